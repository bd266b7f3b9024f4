"""Job logic behind the routes.

Reads take the caller's session, keyword-only (``session=``); writes take the farm and run
their own transactions, since each must commit before it sends a message or touches storage.
"""

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
from api.schemas import (
    EventOut,
    EventPage,
    JobCreate,
    JobOut,
    WebhookAttemptOut,
    WebhookDeliveryOut,
)
from shared.farm.context import Farm
from shared.farm.jobs import cancel_job, job_json, new_job, output_url, submit_job
from shared.farm.states import ACTIVE, JobStatus
from shared.infra.models import Job, JobEvent, Tenant, WebhookAttempt, WebhookDelivery
from shared.infra.storage import job_prefix
from shared.speech.factory import resolve_engine_name
from shared.text.chunking import chunk_text
from shared.webhooks.outbox import DeliveryStatus
from shared.webhooks.urls import WebhookUrlRefused, check_webhook_url

# --- writes ---------------------------------------------------------------------------------


def request_hash(body: JobCreate) -> str:
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def submit(farm: Farm, tenant: Tenant, body: JobCreate, idempotency_key: str | None) -> Job:
    """Create the job and its chunks, then queue the chunks. An Idempotency-Key seen before
    returns the earlier job."""
    digest = request_hash(body)
    earlier = _earlier_job(farm, tenant, idempotency_key, digest)
    if earlier is not None:
        return earlier
    if not body.text.strip():
        raise InvalidInput("text is empty")
    if body.webhook_url:
        try:
            check_webhook_url(body.webhook_url, farm.settings.webhooks.allowlist)
        except WebhookUrlRefused as exc:
            raise InvalidInput(str(exc)) from None
    chunked = chunk_text(body.text, farm.settings.chunking.max_chars)
    if not chunked.spans:
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
        submit_job(farm, job, chunks)
    except IntegrityError:  # the same Idempotency-Key, submitted concurrently
        earlier = _earlier_job(farm, tenant, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier
    return job


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


def cancel(farm: Farm, tenant: Tenant, job_id: uuid.UUID) -> None:
    with farm.sessions() as session:
        get_job(tenant, job_id, session=session)
    if not cancel_job(farm, job_id):
        raise JobNotCancellable()


def delete_job(farm: Farm, tenant: Tenant, job_id: uuid.UUID) -> int:
    """Cancel if still active, remove every object of the job, then its rows."""
    with farm.sessions() as session:
        active = get_job(tenant, job_id, session=session).status in ACTIVE
    if active:
        cancel_job(farm, job_id)
    removed = farm.store.delete_prefix(job_prefix(str(job_id)))
    with farm.sessions() as session:
        session.execute(delete(Job).where(Job.id == job_id))
    return removed


# --- reads ----------------------------------------------------------------------------------


def get_job(tenant: Tenant, job_id: uuid.UUID, *, session: Session) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant.id:
        raise JobNotFound()
    return job


def job_out(farm: Farm, job: Job) -> JobOut:
    return JobOut.model_validate(job_json(farm, job))


def audio_url(farm: Farm, job: Job) -> str:
    if job.status != JobStatus.SUCCEEDED or not job.output_key:
        raise AudioNotReady(f"the job is {job.status}; audio exists once it has succeeded")
    return output_url(farm, job)


def _encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(job_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, TypeError):
        raise InvalidInput("cursor is not one this API returned") from None


def list_jobs(
    tenant: Tenant, status: str | None, limit: int, cursor: str | None, *, session: Session
) -> tuple[list[Job], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Job).where(Job.tenant_id == tenant.id)
    if status:
        query = query.where(Job.status == status)
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created, (Job.created_at == created) & (Job.id < job_id))
        )
    jobs = list(
        session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))
    )
    if len(jobs) <= limit:
        return jobs, None
    last = jobs[limit - 1]
    return jobs[:limit], _encode_cursor(last.created_at, last.id)


def job_events(
    tenant: Tenant, job_id: uuid.UUID, after: int | None, limit: int, *, session: Session
) -> EventPage:
    """The job's history, oldest first: each change of the job's or a chunk's state."""
    get_job(tenant, job_id, session=session)
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after is not None:
        query = query.where(JobEvent.id > after)
    events = list(session.scalars(query.order_by(JobEvent.id).limit(limit + 1)))
    items = [
        EventOut(
            id=event.id,
            kind=event.kind,
            chunk=event.data.get("chunk"),
            data={k: v for k, v in event.data.items() if k != "chunk"},
            created_at=event.created_at,
        )
        for event in events[:limit]
    ]
    return EventPage(items=items, next_after=items[-1].id if len(events) > limit else None)


def webhook_history(
    tenant: Tenant, job_id: uuid.UUID, *, session: Session
) -> list[WebhookDeliveryOut]:
    get_job(tenant, job_id, session=session)
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
                next_attempt_at=d.next_attempt_at if d.status == DeliveryStatus.PENDING else None,
                delivered_at=d.delivered_at,
            )
        )
    return out
