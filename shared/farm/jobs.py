"""A job as a whole: made from a chunked text, submitted (rows first, then messages), failed or
cancelled with its webhook, and described as JSON, the one shape the API returns and webhooks
carry. Used by the API and by embedded mode alike."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import delete, insert, inspect
from sqlalchemy.orm import Session

from shared.audio import SAMPLE_RATE
from shared.audio.presets import Mastering
from shared.farm.checked import job_checks
from shared.farm.context import FarmContext
from shared.farm.limits import count_chars
from shared.farm.outputs import chapter_progress, download_name, listing
from shared.farm.states import ChapterStatus, ChunkStatus, JobStatus
from shared.farm.transitions import CHUNK_WAITING_TO_CANCELLED, move_job
from shared.farm.usage import cost_json
from shared.infra import queues
from shared.infra.db import notify_at_commit
from shared.infra.models import Chapter, Chunk, Job, utcnow
from shared.text.chunking import ChunkedText
from shared.text.lexicon import Lexicon
from shared.text.verbalizer import verbalize
from shared.webhooks.outbox import add_event


@dataclass(frozen=True)
class JobRequest:
    """What a job is made of besides its text, whoever submits it (the api, ``lyre synth``)."""

    voice: str
    engine: str
    mastering: Mastering
    preset: str | None = None
    title: str | None = None
    author: str | None = None
    language: str | None = None
    cover_key: str | None = None
    lexicon: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    request_hash: str | None = None
    priority: int = 0  # among the tenant's jobs: higher first
    interactive: bool = False  # someone waits on it: its chunks go ahead of books'
    seed: int | None = None  # the chunks' seeds derive from it: the same request, the same bytes
    warnings: tuple[str, ...] = ()  # the input's, read otherwise than written (the job shows them)


def say(chunked: ChunkedText, lexicon: Lexicon) -> list[str]:
    """What the engine is asked to say for each span of ``chunked``: its spoken text as a
    reader says it, the lexicon's respellings first (it counts what it applied). The author's
    words stay the spans' own."""
    return [verbalize(span.text, lexicon) for span in chunked.spans]


def new_job(
    job_id: uuid.UUID, tenant_id: uuid.UUID, chunked: ChunkedText, request: JobRequest
) -> tuple[Job, list[Chunk], list[Chapter]]:
    """A queued job, one pending chunk row per span of the text (spoken through the lexicon,
    shown as written), waiting in Postgres for the dispatcher; and one waiting row per
    chapter."""
    lexicon = Lexicon(request.lexicon)
    spoken = say(chunked, lexicon)
    job = Job(
        id=job_id,
        tenant_id=tenant_id,
        status=JobStatus.QUEUED,
        voice=request.voice,
        format=request.mastering.format,
        engine=request.engine,
        title=request.title,
        author=request.author,
        language=request.language,
        cover_key=request.cover_key,
        preset=request.preset,
        mastering=request.mastering.model_dump(),
        lexicon={"entries": lexicon.entries, "applied": dict(lexicon.applied)},
        outputs=[],
        version=1,
        webhook_url=request.webhook_url,
        metadata_=request.metadata,
        idempotency_key=request.idempotency_key,
        request_hash=request.request_hash,
        priority=request.priority,
        interactive=request.interactive,
        seed=request.seed,
        chars=sum(len(span.text) for span in chunked.spans),
        chunks_total=len(chunked.spans),
        chunks_done=0,
        audio_samples=0,
        warnings={"messages": [*request.warnings, *chunked.warnings]},
        created_at=utcnow(),
    )
    chunks = [
        Chunk(
            job_id=job_id,
            index=span.index,
            status=ChunkStatus.PENDING,
            text=said,
            caption=span.text if said != span.text else None,
            voice=span.voice or request.voice,
            boundary=span.boundary.value,
            chapter=span.chapter,
            pause_s=span.pause_s,
            rate=span.rate if span.rate != 1.0 else None,
            marks=[list(mark) for mark in span.marks] or None,
            attempts=0,
        )
        for span, said in zip(chunked.spans, spoken, strict=True)
    ]
    per_chapter = Counter(span.chapter for span in chunked.spans)
    chapters = [
        Chapter(
            job_id=job_id,
            index=i,
            title=title,
            status=ChapterStatus.WAITING,
            version=1,
            chunks_total=per_chapter[i],
            chunks_done=0,
        )
        for i, title in enumerate(chunked.chapters)
    ]
    return job, chunks, chapters


def submit_job(
    farm: FarmContext,
    job: Job,
    chunks: list[Chunk],
    chapters: list[Chapter],
    *,
    replace: bool = False,
    chars_per_day: int = 0,
) -> None:
    """Insert the job, its chapters and chunks in one transaction, counted against its tenant's
    ``chars_per_day`` (0: no limit; :class:`DailyLimitReached` leaves nothing behind), and wake
    the dispatcher, which sends the chunks in their turn (``shared.farm.dispatch``).
    ``replace`` deletes a job with the same id first (embedded mode's rerun)."""
    with farm.sessions() as session:
        if replace:
            session.execute(delete(Job).where(Job.id == job.id))
        count_chars(session, job.tenant_id, job.chars, chars_per_day)
        session.add(job)
        session.flush()  # the job before its chapters and chunks: they reference it
        session.add_all(chapters)
        session.flush()
        session.execute(insert(Chunk), [_columns(chunk) for chunk in chunks])
        notify_at_commit(session, queues.DISPATCH_CHANNEL)


def _columns(chunk: Chunk) -> dict[str, Any]:
    """The columns ``new_job`` gave ``chunk``: the rows go as one multi-row INSERT of these
    alone (the ORM's flush lists all 26 columns of every row: 13 ms for 40 rows, against 4)."""
    given = inspect(chunk).dict
    return {
        column.key: given[column.key] for column in Chunk.__table__.columns if column.key in given
    }


def notify(farm: FarmContext, session: Session, job_id: uuid.UUID, event_type: str) -> str | None:
    """Queue ``event_type`` for the job's webhook in this transaction; the delivery's id, or
    None when the job has no webhook."""
    session.flush()
    job = session.get(Job, job_id, populate_existing=True)
    if job is None or not job.webhook_url:
        return None
    chapters = chapter_progress(farm, session, [job.id])[job.id]
    return add_event(session, job.id, job.webhook_url, event_type, job_json(farm, job, chapters))


def fail_job(farm: FarmContext, job_id: uuid.UUID, error: str) -> bool:
    """Mark a job failed (a stage gave up on it) and send its webhook."""
    with farm.sessions() as session:
        failed = move_job(session, job_id, JobStatus.FAILED, error=error)
        delivery = notify(farm, session, job_id, "job.failed") if failed else None
    if delivery:
        farm.send.deliver(delivery)
    return failed


def cancel_job(farm: FarmContext, job_id: uuid.UUID) -> bool:
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


def output_url(farm: FarmContext, job: Job) -> str:
    """A download URL of the job's programme (of the current outputs), named after its title."""
    programme = next(o for o in job.outputs if o["kind"] == "programme")
    name = download_name(job, programme["key"].rsplit("/", 1)[-1])
    return farm.store.presign(programme["key"], name)


def job_json(
    farm: FarmContext, job: Job, chapters: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The job as the API returns it and as webhooks carry it; ``chapters`` from
    ``shared.farm.outputs.chapter_progress``."""
    samples = job.output_samples if job.output_samples is not None else job.audio_samples
    return {
        "id": str(job.id),
        "status": job.status,
        "voice": job.voice,
        "format": job.format,
        "preset": job.preset,
        "mastering": job.mastering,
        "engine": job.engine,
        "priority": job.priority,
        "seed": job.seed,
        "title": job.title,
        "author": job.author,
        "language": job.language,
        "metadata": job.metadata_,
        "progress": {
            "stage": stage(job, chapters or []),
            "chunks_done": job.chunks_done,
            "chunks_total": job.chunks_total,
            "audio_seconds": round(samples / SAMPLE_RATE, 3),
        },
        "version": job.version,
        "outputs_version": job.outputs[0]["version"] if job.outputs else None,
        "outputs": listing(farm, job),
        "chapters": chapters or [],
        # what the checks found, over the chapters made (each chapter lists its suspects)
        "checks": job_checks(chapters or []),
        "cost": cost_json(partial(getattr, job)),
        # how many entries were in effect (the job keeps them, for a redo) and those applied
        "lexicon": {
            "entries": len(job.lexicon.get("entries") or {}),
            "applied": job.lexicon.get("applied", {}),
        },
        "warnings": list(job.warnings.get("messages", [])),
        "error": job.error,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "chunks_expired_at": _iso(job.chunks_expired_at),
        "expired_at": _iso(job.expired_at),
    }


def stage(job: Job, chapters: list[dict[str, Any]]) -> str:
    """Where a job is: waiting for the GPUs, its chunks being made, its chapters' files being
    made (its chunks all done), the book's own files being made (every chapter's done), or
    finished (succeeded, failed or cancelled)."""
    if job.status == JobStatus.QUEUED:
        return "queued"
    if job.status != JobStatus.RUNNING:
        return "finished"
    if job.chunks_done < job.chunks_total:
        return "generating"
    if any(chapter["status"] != ChapterStatus.DONE for chapter in chapters):
        return "chapters"
    return "book_files"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
