"""The outbox: a webhook event is a row written in the transaction that ends the job, so that
it is sent if and only if the job's new state was committed."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from shared.infra.models import WebhookDelivery, utcnow


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # an attempt is due at next_attempt_at
    DELIVERED = "delivered"  # the client answered 2xx
    FAILED = "failed"  # retried for WebhookSettings.retry_for_s without success


# The allowed transitions (target -> sources). ``shared.webhooks.delivery`` holds one
# compare-and-set statement per edge, checked against this table by tests/unit/test_transitions.py.
DELIVERY_TRANSITIONS: dict[DeliveryStatus, tuple[DeliveryStatus, ...]] = {
    DeliveryStatus.DELIVERED: (DeliveryStatus.PENDING,),
    DeliveryStatus.FAILED: (DeliveryStatus.PENDING,),
}


def add_event(
    session: Session, job_id: uuid.UUID, url: str, event_type: str, data: dict[str, Any]
) -> str:
    """Queue ``event_type`` with ``data`` (the job's JSON) for ``url``; return the delivery's
    id, which is also the ``webhook-id`` the client sees."""
    delivery_id = f"msg_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": utcnow().isoformat(), "data": data}
    session.add(
        WebhookDelivery(
            id=delivery_id,
            job_id=job_id,
            event_type=event_type,
            url=url,
            payload=payload,
            status=DeliveryStatus.PENDING,
        )
    )
    return delivery_id
