"""Job logic behind the routes: submit, read, list, cancel, delete."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import (
    AudioNotReady,
    IdempotencyConflict,
    InvalidInput,
    JobNotCancellable,
    JobNotFound,
)
from api.schemas import JobCreate, JobOut, Output, Progress, WebhookAttemptOut, WebhookDeliveryOut
from api.services.webhook_urls import check_webhook_url
from shared.chunking import chunk_text
from shared.codec import SAMPLE_RATE
from shared.engines import resolve_engine_name
from shared.farm import Farm, cancel_job
from shared.jobs import generation_order, new_job
from shared.models import Job, Tenant, WebhookAttempt, WebhookDelivery
from shared.states import ACTIVE, JobStatus
from shared.storage import job_prefix


def request_hash(body: JobCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def submit_job(
    farm: Farm, tenant: Tenant, body: JobCreate, idempotency_key: str | None
) -> tuple[Job, bool]:
    """Create the job and its chunks in one transaction, then queue the chunks.
    Returns (job, created); an Idempotency-Key seen before returns the earlier job."""
    digest = request_hash(body)
    earlier = _earlier_job(farm, tenant, idempotency_key, digest)
    if earlier is not None:
        return earlier, False
    if not body.text.strip():
        raise InvalidInput("text is empty")
    if body.webhook_url:
        check_webhook_url(body.webhook_url, farm.settings.webhooks.allowlist)
    chunked = chunk_text(body.text, farm.settings.chunking.max_chars)
    if not chunked.chunks:
        raise InvalidInput("text has nothing to say (no words)")
    job, chunks = new_job(
        uuid.uuid4(),
        tenant.id,
        chunked,
        voice=body.voice,
        fmt=body.format,
        engine=resolve_engine_name(farm.settings)[0],
        lease_until=farm.lease(),
        title=body.title,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    try:
        with farm.sessions() as session:
            session.add(job)
            session.flush()
            session.add_all(chunks)
    except IntegrityError:  # the same Idempotency-Key, submitted concurrently
        earlier = _earlier_job(farm, tenant, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier, False
    for chunk in generation_order(
        chunked.chunks
    ):  # after commit; if this is lost, the reconciler re-sends
        farm.dispatch.generate(job.id, chunk.index)
    return job, True


def _earlier_job(farm: Farm, tenant: Tenant, key: str | None, digest: str) -> Job | None:
    """The job an Idempotency-Key already made; 409 if it was made from another body."""
    if not key:
        return None
    with farm.sessions() as session:
        earlier = session.scalar(
            select(Job).where(Job.tenant_id == tenant.id, Job.idempotency_key == key)
        )
    if earlier is not None and earlier.request_hash != digest:
        raise IdempotencyConflict()
    return earlier


def get_job(session: Session, tenant: Tenant, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant.id:
        raise JobNotFound()
    return job


def job_out(farm: Farm, job: Job) -> JobOut:
    outputs = []
    if job.status == JobStatus.SUCCEEDED and job.output_key:
        outputs.append(
            Output(
                format=job.format,
                url=audio_url(farm, job),
                expires_in_s=farm.settings.storage.presign_expiry_s,
            )
        )
    return JobOut(
        id=job.id,
        status=JobStatus(job.status),
        voice=job.voice,
        format=job.format,
        title=job.title,  # type: ignore[arg-type]
        metadata=job.metadata_,
        progress=Progress(
            chunks_done=job.chunks_done,
            chunks_total=job.chunks_total,
            audio_seconds=round(job.audio_samples / SAMPLE_RATE, 3),
        ),
        outputs=outputs,
        warnings=list(job.warnings.get("messages", [])),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


def audio_url(farm: Farm, job: Job) -> str:
    if job.status != JobStatus.SUCCEEDED or not job.output_key:
        raise AudioNotReady(f"the job is {job.status}; audio exists once it has succeeded")
    name = "".join(ch for ch in (job.title or str(job.id)) if ch.isalnum() or ch in " -_")
    return farm.store.presign(job.output_key, f"{name.strip() or job.id}.{job.format}")


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, TypeError):
        raise InvalidInput("cursor is not one this API returned") from None


def list_jobs(
    session: Session, tenant: Tenant, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Job).where(Job.tenant_id == tenant.id)
    if status:
        query = query.where(Job.status == status)
    if cursor:
        created, job_id = decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created, (Job.created_at == created) & (Job.id < job_id))
        )
    jobs = list(
        session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))
    )
    more = len(jobs) > limit
    return jobs[:limit], encode_cursor(jobs[limit - 1]) if more else None


def cancel(farm: Farm, tenant: Tenant, job_id: uuid.UUID) -> None:
    with farm.sessions() as session:
        get_job(session, tenant, job_id)
    if not cancel_job(farm, job_id):
        raise JobNotCancellable()


def delete_job(farm: Farm, tenant: Tenant, job_id: uuid.UUID) -> int:
    """Cancel if still active, remove every object of the job, then its rows."""
    with farm.sessions() as session:
        job = get_job(session, tenant, job_id)
        active = job.status in ACTIVE
    if active:
        cancel_job(farm, job_id)
    removed = farm.store.delete_prefix(job_prefix(str(job_id)))
    with farm.sessions() as session:
        session.execute(delete(Job).where(Job.id == job_id))
    return removed


def webhook_history(
    session: Session, tenant: Tenant, job_id: uuid.UUID
) -> list[WebhookDeliveryOut]:
    get_job(session, tenant, job_id)
    deliveries = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.job_id == job_id)
        .order_by(WebhookDelivery.created_at)
    )
    out = []
    for d in deliveries:
        attempts = session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == d.id)
            .order_by(WebhookAttempt.id)
        )
        out.append(
            WebhookDeliveryOut(
                id=d.id,
                event_type=d.event_type,
                url=d.url,
                status=d.status,
                attempts=[
                    WebhookAttemptOut(
                        attempted_at=a.attempted_at,
                        status_code=a.status_code,
                        error=a.error,
                        duration_ms=a.duration_ms,
                    )
                    for a in attempts
                ],
                next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
                delivered_at=d.delivered_at,
            )
        )
    return out
