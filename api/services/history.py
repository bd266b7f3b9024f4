"""A job's history behind the routes: its events and its webhook deliveries, oldest first."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import EventOut, EventPage, WebhookAttemptOut, WebhookDeliveryOut
from api.services.jobs import get_job
from shared.infra.models import JobEvent, Tenant, WebhookAttempt, WebhookDelivery
from shared.webhooks.outbox import DeliveryStatus


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
