"""One attempt at a webhook delivery, and when to try again.

An attempt is three steps, and only the first and last touch the database: claim the delivery
(a compare-and-set that moves its next attempt past this one's timeout, so that a duplicate
message finds it not due and does nothing), make the signed HTTP call with no transaction
open and no row locked, then record the attempt and the outcome. A worker that dies in the
middle leaves the delivery pending; the reconciler sends it again once it is stale.

The outcome is a compare-and-set too, named after the edge of ``outbox.DELIVERY_TRANSITIONS`` it
takes (``DELIVERY_PENDING_TO_DELIVERED``), or ``RETRY_DELIVERY``, which changes no status; zero
rows means a duplicate attempt moved the delivery first. ``tests/unit/test_transitions.py``
checks each one against the table.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import bindparam, exc, select, update
from sqlalchemy.orm import Session

from shared.infra.db import take_batch
from shared.infra.models import Job, Tenant, WebhookAttempt, WebhookDelivery, utcnow
from shared.infra.settings import WebhookSettings
from shared.webhooks.outbox import DeliveryStatus
from shared.webhooks.signing import sign_headers
from shared.webhooks.urls import WebhookUrlRefused, check_webhook_url, pinned

# A retry's message is sent with the delay it waits, after next_attempt_at is committed, so it
# arrives due; this much earlier is tolerated for clocks that differ between machines.
CLOCK_SKEW_S = 1.0
# How long past an attempt's timeout its claim holds, for recording the outcome.
CLAIM_MARGIN_S = 30.0

_THIS_PENDING = (
    WebhookDelivery.id == bindparam("delivery"),
    WebhookDelivery.status == DeliveryStatus.PENDING,
)
_COUNTED = WebhookDelivery.attempts + 1

CLAIM_DUE_DELIVERY = (
    update(WebhookDelivery)
    .where(*_THIS_PENDING, WebhookDelivery.next_attempt_at <= bindparam("due"))
    .values(next_attempt_at=bindparam("claimed_until"))
    .returning(
        WebhookDelivery.url,
        WebhookDelivery.payload,
        WebhookDelivery.job_id,
        WebhookDelivery.attempts,
    )
)
# Held until the attempt is recorded: the attempt's row needs its delivery, which a job deleted
# meanwhile takes with it.
_KEEP_DELIVERY = (
    select(WebhookDelivery.id)
    .where(WebhookDelivery.id == bindparam("delivery"))
    .with_for_update(read=True, key_share=True)
)
DELIVERY_PENDING_TO_DELIVERED = (
    update(WebhookDelivery)
    .where(*_THIS_PENDING)
    .values(status=DeliveryStatus.DELIVERED.value, attempts=_COUNTED, delivered_at=bindparam("now"))
)
# Given up: the attempt failed and the delivery is older than the retry window.
DELIVERY_PENDING_TO_FAILED = (
    update(WebhookDelivery)
    .where(*_THIS_PENDING, WebhookDelivery.created_at < bindparam("given_up_before"))
    .values(status=DeliveryStatus.FAILED.value, attempts=_COUNTED)
)
# The attempt failed within the retry window: try again at ``next_attempt_at``.
RETRY_DELIVERY = (
    update(WebhookDelivery)
    .where(*_THIS_PENDING)
    .values(attempts=_COUNTED, next_attempt_at=bindparam("next_attempt_at"))
)
# The reconciler's: pending deliveries whose attempt is overdue by ``stale_before`` (their
# message was lost, or their worker died mid-attempt), made due now and returned to be re-sent.
RESEND_STALE_DELIVERIES = take_batch(
    WebhookDelivery,
    (WebhookDelivery.id,),
    select(WebhookDelivery.id).where(
        WebhookDelivery.status == DeliveryStatus.PENDING,
        WebhookDelivery.next_attempt_at < bindparam("stale_before"),
    ),
    next_attempt_at=bindparam("now"),
)


def backoff(attempt: int, settings: WebhookSettings) -> float:
    """Seconds before the next attempt: exponential, capped, with full jitter on the top half."""
    ceiling = min(settings.max_delay_s, settings.base_delay_s * 2 ** max(attempt - 1, 0))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def deliver(
    sessions: Callable[[], AbstractContextManager[Session]],
    delivery_id: str,
    client: httpx.Client,
    settings: WebhookSettings,
) -> float | None:
    """Make one attempt if the delivery is due; return the delay before the next one, or None
    when there is nothing more to do (delivered, given up, or not ours to attempt)."""
    now = utcnow()
    claimed_until = now + timedelta(seconds=settings.timeout_s + CLAIM_MARGIN_S)
    claim = {
        "delivery": delivery_id,
        "due": now + timedelta(seconds=CLOCK_SKEW_S),
        "claimed_until": claimed_until,
    }
    with sessions() as session:
        claimed = session.execute(CLAIM_DUE_DELIVERY, claim).first()
        if claimed is None:
            return None
        secret = session.scalar(
            select(Tenant.webhook_secret).join(Job).where(Job.id == claimed.job_id)
        )
    outcome = _post(client, claimed, delivery_id, secret or "", settings)
    # The client has the event now: its outcome must be recorded, or the reconciler sends it
    # again. A database that went away meanwhile (a restart, a failover) is waited for while
    # the claim holds.
    pause_s = 0.1
    while True:
        try:
            with sessions() as session:
                return _record_attempt(
                    session, delivery_id, outcome, claimed.attempts + 1, settings
                )
        except exc.OperationalError:
            if utcnow() + timedelta(seconds=pause_s) >= claimed_until:
                raise
            time.sleep(pause_s)
            pause_s = min(2 * pause_s, 2.0)


def _record_attempt(
    session: Session,
    delivery_id: str,
    outcome: tuple[int | None, str | None, float],
    attempt: int,
    settings: WebhookSettings,
) -> float | None:
    """Record ``attempt`` (1 for the first) and its outcome; return the delay before the next
    attempt, or None."""
    if session.scalar(_KEEP_DELIVERY, {"delivery": delivery_id}) is None:
        return None  # the job was deleted meanwhile
    status_code, error, duration_ms = outcome
    session.add(
        WebhookAttempt(
            delivery_id=delivery_id, status_code=status_code, error=error, duration_ms=duration_ms
        )
    )
    return _move(session, delivery_id, error, attempt, settings)


def _post(
    client: httpx.Client, claimed: Any, delivery_id: str, secret: str, settings: WebhookSettings
) -> tuple[int | None, str | None, float]:
    """The signed POST: its status code, the error if it was not a 2xx, its duration."""
    body = json.dumps(claimed.payload, separators=(",", ":"))
    started = time.perf_counter()
    status_code, error = None, None
    try:  # checked again now, and sent to the address checked; a redirect is not followed
        url, host, extensions = pinned(
            claimed.url, check_webhook_url(claimed.url, settings.allowlist)
        )
        response = client.post(
            url,
            content=body,
            headers={**sign_headers(secret, delivery_id, body), **host},
            extensions=extensions,
            timeout=settings.timeout_s,
            follow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except WebhookUrlRefused as exc:
        error = f"refused when sending: {exc}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"
    return status_code, error, (time.perf_counter() - started) * 1000


def _move(
    session: Session, delivery_id: str, error: str | None, attempt: int, settings: WebhookSettings
) -> float | None:
    """Take the edge the attempt's outcome says; return the delay before the next attempt, or
    None."""
    now = utcnow()
    bound = {"delivery": delivery_id}
    if error is None:
        session.execute(DELIVERY_PENDING_TO_DELIVERED, {**bound, "now": now})
        return None
    given_up_before = now - timedelta(seconds=settings.retry_for_s)
    if _took(session, DELIVERY_PENDING_TO_FAILED, {**bound, "given_up_before": given_up_before}):
        return None
    delay = backoff(attempt, settings)
    retry = {**bound, "next_attempt_at": now + timedelta(seconds=delay)}
    return delay if _took(session, RETRY_DELIVERY, retry) else None


def _took(session: Session, statement: Any, params: dict[str, Any]) -> bool:
    """Whether a compare-and-set moved its row (zero rows: another moved it first)."""
    return bool(session.execute(statement, params).rowcount)  # type: ignore[attr-defined]
