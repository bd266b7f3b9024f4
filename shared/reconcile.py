"""The reconciler: re-sends work whose lease expired, so that a lost message, a flushed Redis
or a dead worker never strands a job. Postgres says what is owed; Redis only carries it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from shared.farm import Farm
from shared.models import Chunk, Job, WebhookDelivery, utcnow
from shared.states import ACTIVE, ChunkStatus, JobStatus

BATCH = 1000


@dataclass
class Resent:
    generate: list[tuple] = field(default_factory=list)
    decode: list[tuple] = field(default_factory=list)
    stitch: list = field(default_factory=list)
    deliver: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in vars(self).items()}


def _expired(column, now: datetime):
    return or_(column.is_(None), column < now)


def reconcile(farm: Farm, now: datetime | None = None) -> dict[str, int]:
    """Re-send every chunk, stitch and webhook whose lease ran out; return how many."""
    now = now or utcnow()
    lease = now + timedelta(seconds=farm.settings.farm.lease_s)
    resent = Resent()
    with farm.sessions() as session:
        active = select(Job.id).where(Job.status.in_(ACTIVE))
        chunks = session.scalars(
            select(Chunk)
            .where(
                Chunk.status.in_([ChunkStatus.PENDING, ChunkStatus.GENERATED]),
                _expired(Chunk.lease_until, now),
                Chunk.job_id.in_(active),
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        for chunk in chunks:
            chunk.lease_until = lease
            owed = resent.generate if chunk.status == ChunkStatus.PENDING else resent.decode
            owed.append((chunk.job_id, chunk.index))
        jobs = session.scalars(
            select(Job)
            .where(
                Job.status == JobStatus.RUNNING,
                Job.chunks_done == Job.chunks_total,
                _expired(Job.stitch_lease_until, now),
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        for job in jobs:
            job.stitch_lease_until = lease
            resent.stitch.append(job.id)
        grace = timedelta(seconds=farm.settings.farm.lease_s)
        deliveries = session.scalars(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at < now - grace
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        )
        for delivery in deliveries:
            delivery.next_attempt_at = now
            resent.deliver.append(delivery.id)
    for job_id, index in resent.generate:
        farm.dispatch.generate(job_id, index)
    for job_id, index in resent.decode:
        farm.dispatch.decode(job_id, index)
    for job_id in resent.stitch:
        farm.dispatch.stitch(job_id)
    for delivery_id in resent.deliver:
        farm.dispatch.deliver(delivery_id)
    return resent.counts()
