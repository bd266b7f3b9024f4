"""The reconciler: re-sends work whose lease expired, so that a lost message, a flushed Redis
or a dead worker never strands a job. Postgres says what is owed; Redis only carries it.

Each kind of work is one statement (``RESEND_*``): the rows past their deadline are locked
(skipping those another reconciler holds), leased again, and returned to be sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from shared.farm.context import Farm
from shared.farm.states import ChunkStatus
from shared.farm.transitions import (
    RESEND_EXPIRED_CHAPTERS,
    RESEND_EXPIRED_CHUNKS,
    RESEND_EXPIRED_STITCHES,
)
from shared.infra.models import utcnow
from shared.webhooks.delivery import RESEND_STALE_DELIVERIES

BATCH = 1000  # rows of each kind per run; the rest wait for the next run


def reconcile(farm: Farm, now: datetime | None = None) -> dict[str, int]:
    """Re-send every chunk, chapter, stitch and webhook whose lease ran out; return how
    many."""
    now = now or utcnow()
    lease_s = timedelta(seconds=farm.settings.farm.lease_s)
    leased = {"now": now, "lease": now + lease_s, "batch": BATCH}
    # a webhook's own retry is due at next_attempt_at: stale only a lease after that
    stale = {"now": now, "stale_before": now - lease_s, "batch": BATCH}
    with farm.sessions() as session:
        chunks = session.execute(RESEND_EXPIRED_CHUNKS, leased).all()
        chapters = session.execute(RESEND_EXPIRED_CHAPTERS, leased).all()
        stitches = session.scalars(RESEND_EXPIRED_STITCHES, leased).all()
        deliveries = session.scalars(RESEND_STALE_DELIVERIES, stale).all()
    generate = [(job, index) for job, index, status in chunks if status == ChunkStatus.PENDING]
    decode = [(job, index) for job, index, status in chunks if status == ChunkStatus.GENERATED]
    for job_id, index in generate:
        farm.send.generate(job_id, index)
    for job_id, index in decode:
        farm.send.decode(job_id, index)
    for job_id, chapter in chapters:
        farm.send.stitch_chapter(job_id, chapter)
    for job_id in stitches:
        farm.send.stitch(job_id)
    for delivery_id in deliveries:
        farm.send.deliver(delivery_id)
    return {
        "generate": len(generate),
        "decode": len(decode),
        "chapter": len(chapters),
        "stitch": len(stitches),
        "deliver": len(deliveries),
    }
