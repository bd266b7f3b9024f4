"""The reconciler: work whose lease ran out is sent again, so that a lost message, a flushed
Redis or a dead worker never strands a job. Postgres says what is owed; Redis only carries it.

Each kind of work is one statement: the rows past their deadline are locked (skipping those
another reconciler holds), leased again, and returned to be sent. Chunks waiting for the GPU are
not sent from here: they go back to the dispatcher (``shared.farm.dispatch``), which sends them
again in their turn.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, or_, select
from sqlalchemy.orm import InstrumentedAttribute

from shared.farm.context import FarmContext
from shared.farm.states import ACTIVE, ChapterStatus, ChunkStatus, JobStatus
from shared.farm.transitions import ALL_CHAPTERS_DONE, BACK_TO_THE_DISPATCHER, ITS_CHUNKS_DONE
from shared.infra import queues
from shared.infra.db import notify_at_commit, take_batch
from shared.infra.models import Chapter, Chunk, Job, utcnow
from shared.webhooks.delivery import RESEND_STALE_DELIVERIES

# Work whose lease ran out, leased again and returned to be re-sent.


def _expired(column: InstrumentedAttribute[Any]) -> Any:
    return or_(column.is_(None), column < bindparam("now"))


_OF_ACTIVE_JOB = Chunk.job_id.in_(select(Job.id).where(Job.status.in_(ACTIVE)))
_SENT = (Chunk.status == ChunkStatus.PENDING.value, Chunk.sent_at.is_not(None), _OF_ACTIVE_JOB)

# Chunks sent to the GPUs whose lease ran out: lost with a worker, or on the queue too long.
# Not sent from here: back to Postgres's side of the window, for the dispatcher's next tick.
RETURN_EXPIRED_CHUNKS = take_batch(
    Chunk,
    (Chunk.job_id, Chunk.index),
    select(Chunk.job_id, Chunk.index).where(*_SENT, _expired(Chunk.lease_until)),
    **BACK_TO_THE_DISPATCHER,
)
# The broker lost its messages: every chunk sent and not yet taken by a worker goes back.
RETURN_UNTAKEN_CHUNKS = take_batch(
    Chunk,
    (Chunk.job_id, Chunk.index),
    select(Chunk.job_id, Chunk.index).where(*_SENT, Chunk.taken_at.is_(None)),
    **BACK_TO_THE_DISPATCHER,
)
RESEND_EXPIRED_DECODES = take_batch(
    Chunk,
    (Chunk.job_id, Chunk.index),
    select(Chunk.job_id, Chunk.index).where(
        Chunk.status == ChunkStatus.GENERATED.value,
        _expired(Chunk.lease_until),
        _OF_ACTIVE_JOB,
    ),
    lease_until=bindparam("lease"),
)
RESEND_EXPIRED_CHAPTERS = take_batch(
    Chapter,
    (Chapter.job_id, Chapter.index),
    select(Chapter.job_id, Chapter.index).where(
        Chapter.status == ChapterStatus.WAITING,
        _expired(Chapter.lease_until),
        ITS_CHUNKS_DONE,
        Chapter.job_id.in_(select(Job.id).where(Job.status.in_(ACTIVE))),
    ),
    lease_until=bindparam("lease"),
    stitch_holder=None,  # sent again: the next stitch to take it holds it
)
RESEND_EXPIRED_STITCHES = take_batch(
    Job,
    (Job.id,),
    select(Job.id).where(
        Job.status == JobStatus.RUNNING,
        Job.chunks_done == Job.chunks_total,
        ALL_CHAPTERS_DONE,
        _expired(Job.stitch_lease_until),
    ),
    stitch_lease_until=bindparam("lease"),
    stitch_holder=None,
)


BATCH = 1000  # rows of each kind per run; the rest wait for the next run
EVERYTHING = datetime.max.replace(tzinfo=UTC)  # a deadline every lease is past


def reconcile(farm: FarmContext, now: datetime | None = None, lost: bool = False) -> dict[str, int]:
    """Re-send every decode, chapter, stitch and webhook whose lease ran out, and hand every
    such chunk waiting for the GPU back to the dispatcher; return how many of each.

    ``lost``: the broker lost all its messages (Redis restarted without saving). Every chunk
    sent and not yet taken by a gpu worker goes back to the dispatcher, and every other piece
    of work owed is sent again now, whatever its lease (a duplicate does no harm)."""
    now = now or utcnow()
    lease_s = timedelta(seconds=farm.settings.farm.lease_s)
    leased = {"now": EVERYTHING if lost else now, "lease": now + lease_s, "batch": BATCH}
    # a webhook's own retry is due at next_attempt_at: stale only a lease after that
    stale = {"now": now, "stale_before": now if lost else now - lease_s, "batch": BATCH}
    with farm.sessions() as session:
        returning = RETURN_UNTAKEN_CHUNKS if lost else RETURN_EXPIRED_CHUNKS
        returned = len(session.execute(returning, leased).all())
        if returned:
            notify_at_commit(session, queues.DISPATCH_CHANNEL)
        decode = session.execute(RESEND_EXPIRED_DECODES, leased).all()
        chapters = session.execute(RESEND_EXPIRED_CHAPTERS, leased).all()
        stitches = session.scalars(RESEND_EXPIRED_STITCHES, leased).all()
        deliveries = session.scalars(RESEND_STALE_DELIVERIES, stale).all()
    for job_id, index in decode:
        farm.send.decode(job_id, index)
    for job_id, chapter in chapters:
        farm.send.stitch_chapter(job_id, chapter)
    for job_id in stitches:
        farm.send.stitch(job_id)
    for delivery_id in deliveries:
        farm.send.deliver(delivery_id)
    return {
        "returned": returned,
        "decode": len(decode),
        "chapter": len(chapters),
        "stitch": len(stitches),
        "deliver": len(deliveries),
    }
