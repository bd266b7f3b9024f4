"""A job as a whole: made from a chunked text, submitted (rows first, then messages), failed or
cancelled with its webhook, and described as JSON, the one shape the API returns and webhooks
carry. Used by the API and by embedded mode alike."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from shared.audio import SAMPLE_RATE
from shared.farm.context import Farm
from shared.farm.states import ChunkStatus, JobStatus
from shared.farm.transitions import CHUNK_WAITING_TO_CANCELLED, move_job
from shared.infra.models import Chunk, Job, utcnow
from shared.text.chunking import ChunkedText
from shared.webhooks.outbox import add_event


def new_job(
    job_id: uuid.UUID,
    tenant_id: uuid.UUID,
    chunked: ChunkedText,
    *,
    voice: str,
    fmt: str,
    engine: str,
    lease_until: datetime,
    title: str | None = None,
    webhook_url: str | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[Job, list[Chunk]]:
    """A queued job and one pending chunk row per span of the text."""
    job = Job(
        id=job_id,
        tenant_id=tenant_id,
        status=JobStatus.QUEUED,
        voice=voice,
        format=fmt,
        engine=engine,
        title=title,
        webhook_url=webhook_url,
        metadata_=metadata or {},
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        chunks_total=len(chunked.spans),
        chunks_done=0,
        audio_samples=0,
        warnings={"messages": chunked.warnings},
        created_at=utcnow(),
    )
    chunks = [
        Chunk(
            job_id=job_id,
            index=span.index,
            status=ChunkStatus.PENDING,
            text=span.text,
            voice=span.voice or voice,
            boundary=span.boundary.value,
            chapter=span.chapter,
            lease_until=lease_until,
            attempts=0,
        )
        for span in chunked.spans
    ]
    return job, chunks


def submit_job(farm: Farm, job: Job, chunks: list[Chunk], *, replace: bool = False) -> None:
    """Insert the job and its chunks in one transaction, then send their generation: after the
    commit, so that a worker never sees an id that is not there; a lost send is sent again by
    the reconciler when the chunk's lease runs out. ``replace`` deletes a job with the same id
    first (embedded mode's rerun)."""
    with farm.sessions() as session:
        if replace:
            session.execute(delete(Job).where(Job.id == job.id))
        session.add(job)
        session.flush()  # the job before its chunks: they reference it
        session.add_all(chunks)
    # Longest first: the engine's batch then drains evenly at the end of a job instead of
    # waiting on one long chunk started last (longest-processing-time-first scheduling).
    for chunk in sorted(chunks, key=lambda chunk: len(chunk.text), reverse=True):
        farm.send.generate(job.id, chunk.index)


def notify(farm: Farm, session: Session, job_id: uuid.UUID, event_type: str) -> str | None:
    """Queue ``event_type`` for the job's webhook in this transaction; the delivery's id, or
    None when the job has no webhook."""
    session.flush()
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or not job.webhook_url:
        return None
    return add_event(session, job.id, job.webhook_url, event_type, job_json(farm, job))


def fail_job(farm: Farm, job_id: uuid.UUID, error: str) -> bool:
    """Mark a job failed (a stage gave up on it) and send its webhook."""
    with farm.sessions() as session:
        failed = move_job(session, job_id, JobStatus.FAILED, error=error)
        delivery = notify(farm, session, job_id, "job.failed") if failed else None
    if delivery:
        farm.send.deliver(delivery)
    return failed


def cancel_job(farm: Farm, job_id: uuid.UUID) -> bool:
    """Cancel a queued or running job: its waiting chunks are cancelled with it, so that no
    further one is generated or decoded."""
    with farm.sessions() as session:
        if not move_job(session, job_id, JobStatus.CANCELLED):
            return False
        session.execute(CHUNK_WAITING_TO_CANCELLED, {"job": job_id})
        delivery = notify(farm, session, job_id, "job.cancelled")
    if delivery:
        farm.send.deliver(delivery)
    return True


def output_url(farm: Farm, job: Job) -> str:
    """A download URL of the job's programme, named after its title."""
    name = "".join(ch for ch in (job.title or str(job.id)) if ch.isalnum() or ch in " -_")
    return farm.store.presign(job.output_key or "", f"{name.strip() or job.id}.{job.format}")


def job_json(farm: Farm, job: Job) -> dict[str, Any]:
    """The job as the API returns it and as webhooks carry it."""
    outputs = []
    if job.status == JobStatus.SUCCEEDED and job.output_key:
        expiry = farm.settings.storage.presign_expiry_s
        outputs.append({"format": job.format, "url": output_url(farm, job), "expires_in_s": expiry})
    samples = job.output_samples if job.output_samples is not None else job.audio_samples
    return {
        "id": str(job.id),
        "status": job.status,
        "voice": job.voice,
        "format": job.format,
        "engine": job.engine,
        "title": job.title,
        "metadata": job.metadata_,
        "progress": {
            "chunks_done": job.chunks_done,
            "chunks_total": job.chunks_total,
            "audio_seconds": round(samples / SAMPLE_RATE, 3),
        },
        "outputs": outputs,
        "warnings": list(job.warnings.get("messages", [])),
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
