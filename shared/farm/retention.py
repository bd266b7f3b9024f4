"""Retention: a job's objects are removed once it has ended and its tenant's period has passed
(``settings.retention``, or the tenant's own ``retention_days``), and a deleted job's objects
are removed again until none is left.

Two periods: the chunk audio goes first (``chunk_days``; a chapter can no longer be redone,
since the book is rebuilt from every chunk), then every object of the job (``days``). The job's
row stays, marked (``chunks_expired_at``, ``expired_at``), its files listed as gone. Each job is
expired in a transaction of its own that holds its row: a redo starting at that moment waits,
then finds the mark and is refused. Beat runs it every ``every_s``, ``batch`` jobs of each kind
at a time; a job whose objects could not be removed stays unmarked for the next run.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from shared.farm.context import FarmContext
from shared.farm.jobs import cancel_job
from shared.farm.states import FINAL
from shared.infra.models import Chapter, DeletedJob, Job, Tenant, utcnow
from shared.infra.settings import RetentionSettings
from shared.infra.storage import chunks_prefix, job_prefix


class ChunksExpired(RuntimeError):
    """The job's chunk audio has expired (retention period): none of its chapters can be redone."""


def periods(own_days: int | None, settings: RetentionSettings) -> tuple[int, int]:
    """Days a job's chunk audio and its files are kept after it ends, for a tenant's own
    ``retention_days`` (None: the farm's); 0 is for ever. The chunk audio is never kept longer
    than the files."""
    days = settings.days if own_days is None else own_days
    kept = [d for d in (days, settings.chunk_days) if d]
    return (min(kept) if kept else 0), days


def expire(farm: FarmContext, now: datetime | None = None) -> dict[str, int]:
    """Remove what has expired; how many jobs lost their chunk audio, their files, and how
    many deleted jobs were swept."""
    now = now or utcnow()
    return {
        "chunks": _expire_each(farm, now, Job.chunks_expired_at, 0, _expire_chunks),
        "files": _expire_each(farm, now, Job.expired_at, 1, _expire_files),
        "deleted": sweep_deleted(farm, now),
    }


def _expire_each(
    farm: FarmContext, now: datetime, mark: Any, period: int, remove: Callable[..., None]
) -> int:
    """``remove`` the objects of every job not yet marked whose period (0: chunk audio, 1:
    files) has passed, up to a batch; how many."""
    settings = farm.settings.retention
    done = 0
    with farm.sessions() as session:
        own = session.scalars(select(Tenant.retention_days).distinct()).all()
    for days in own:
        keep = periods(days, settings)[period]
        if not keep or done >= settings.batch:
            continue
        of_tenants = (
            Tenant.retention_days.is_(None) if days is None else Tenant.retention_days == days
        )
        due = (
            select(Job.id)
            .join(Tenant, Tenant.id == Job.tenant_id)
            .where(of_tenants, *_unmarked(mark), Job.finished_at < now - timedelta(days=keep))
            .limit(settings.batch - done)
        )
        with farm.sessions() as session:
            found = session.scalars(due).all()
        done += sum(_expire_one(farm, job_id, mark, now, remove) for job_id in found)
    return done


def _unmarked(mark: Any) -> tuple[Any, ...]:
    """An ended job whose objects of this kind are still there."""
    return (
        Job.status.in_([status.value for status in FINAL]),
        Job.expired_at.is_(None),
        mark.is_(None),
    )


def _expire_one(
    farm: FarmContext, job_id: uuid.UUID, mark: Any, now: datetime, remove: Callable[..., None]
) -> bool:
    """Expire one job holding its row (skipped where another holds it: a redo, another
    run); whether it was."""
    held = (
        select(Job.id).where(Job.id == job_id, *_unmarked(mark)).with_for_update(skip_locked=True)
    )
    with farm.sessions() as session:
        if session.scalar(held) is None:  # redone, expired or deleted since it was found
            return False
        remove(farm, session, job_id, now)
    return True


def _expire_chunks(farm: FarmContext, session: Any, job_id: uuid.UUID, now: datetime) -> None:
    farm.store.delete_prefix(chunks_prefix(str(job_id)))
    session.execute(update(Job).where(Job.id == job_id).values(chunks_expired_at=now))


def _expire_files(farm: FarmContext, session: Any, job_id: uuid.UUID, now: datetime) -> None:
    """Every object of the job; its outputs listed no more, so that nothing signs a URL."""
    farm.store.delete_prefix(job_prefix(str(job_id)))
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(
            expired_at=now,
            chunks_expired_at=func.coalesce(Job.chunks_expired_at, now),
            outputs=[],
            output_key=None,
            cover_key=None,
        )
    )
    session.execute(update(Chapter).where(Chapter.job_id == job_id).values(output_key=None))


def remove_job(farm: FarmContext, job_id: uuid.UUID) -> int:
    """Delete a job (cancelled first if still active): its rows, then every object of it;
    how many objects. It is swept again later (``sweep_deleted``)."""
    cancel_job(farm, job_id)  # no further chunk is generated or decoded
    with farm.sessions() as session:
        session.execute(delete(Job).where(Job.id == job_id))
        session.add(DeletedJob(job_id=job_id, deleted_at=utcnow()))
    return farm.store.delete_prefix(job_prefix(str(job_id)))


def sweep_deleted(farm: FarmContext, now: datetime) -> int:
    """Remove the objects of deleted jobs again: a stage that claimed work before the delete
    may write after it (a decode's chunk, a stitch's upload in parts). A job is forgotten once
    a sweep a lease or more after its delete finds nothing left; how many were swept."""
    settings = farm.settings
    with farm.sessions() as session:
        deleted = session.execute(
            select(DeletedJob.job_id, DeletedJob.deleted_at)
            .order_by(DeletedJob.deleted_at)
            .limit(settings.retention.batch)
        ).all()
    settled = now - timedelta(seconds=settings.farm.lease_s)
    for job_id, deleted_at in deleted:
        found = farm.store.delete_prefix(job_prefix(str(job_id)))
        if not found and deleted_at < settled:
            with farm.sessions() as session:
                session.execute(delete(DeletedJob).where(DeletedJob.job_id == job_id))
    return len(deleted)
