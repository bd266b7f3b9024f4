"""Webhook events: written to the outbox in the transaction that ends a job, then delivered
signed per the Standard Webhooks spec and retried with exponential backoff and jitter."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.models import Job, Tenant, WebhookAttempt, WebhookDelivery, utcnow
from shared.settings import WebhookSettings


def job_summary(job: Job) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "status": job.status,
        "title": job.title,
        "format": job.format,
        "chunks_total": job.chunks_total,
        "chunks_done": job.chunks_done,
        "audio_seconds": round((job.output_samples or job.audio_samples) / 24000, 3),
        "error": job.error,
        "metadata": job.metadata_,
    }


def add_event(session: Session, job: Job, event_type: str) -> str | None:
    """Queue ``event_type`` for the job's webhook, if it has one; return the delivery id."""
    if not job.webhook_url:
        return None
    delivery_id = f"msg_{uuid.uuid4().hex}"
    payload = {"type": event_type, "timestamp": utcnow().isoformat(), "data": job_summary(job)}
    session.add(
        WebhookDelivery(
            id=delivery_id,
            job_id=job.id,
            event_type=event_type,
            url=job.webhook_url,
            payload=payload,
        )
    )
    return delivery_id


def backoff(attempt: int, settings: WebhookSettings) -> float:
    """Seconds before the next attempt: exponential, capped, with full jitter on the top half."""
    ceiling = min(settings.max_delay_s, settings.base_delay_s * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def sign_headers(secret: str, delivery_id: str, body: str) -> dict[str, str]:
    from standardwebhooks.webhooks import Webhook

    now = datetime.now().astimezone()
    signature = Webhook(secret).sign(delivery_id, now, body)
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


def deliver(
    session: Session, delivery_id: str, client: httpx.Client, settings: WebhookSettings
) -> float | None:
    """Make one attempt; return the delay before the next one, or None when done."""
    import json

    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != "pending":
        return None
    secret = session.scalar(
        select(Tenant.webhook_secret).join(Job).where(Job.id == delivery.job_id)
    )
    body = json.dumps(delivery.payload, separators=(",", ":"))
    started = time.perf_counter()
    status_code, error = None, None
    try:
        response = client.post(
            delivery.url,
            content=body,
            headers=sign_headers(secret or "", delivery.id, body),
            timeout=settings.timeout_s,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            status_code=status_code,
            error=error,
            duration_ms=(time.perf_counter() - started) * 1000,
        )
    )
    delivery.attempts += 1
    if error is None:
        delivery.status, delivery.delivered_at = "delivered", utcnow()
        return None
    if utcnow() - delivery.created_at > timedelta(seconds=settings.retry_for_s):
        delivery.status = "failed"
        return None
    delay = backoff(delivery.attempts, settings)
    delivery.next_attempt_at = utcnow() + timedelta(seconds=delay)
    return delay
