"""Job and chunk states, the one table of allowed transitions, and the function that applies
them: a compare-and-set UPDATE plus a job_event row, in the caller's transaction."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from shared.models import Job, JobEvent, utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ChunkStatus(StrEnum):
    PENDING = "pending"  # waiting for the GPU
    GENERATED = "generated"  # codes (or PCM) stored, waiting for decode
    DONE = "done"  # finished PCM and loudness stored
    CANCELLED = "cancelled"


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

# target -> the states it may be reached from
JOB_TRANSITIONS: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.RUNNING: (JobStatus.QUEUED,),
    JobStatus.SUCCEEDED: (JobStatus.RUNNING,),
    JobStatus.FAILED: ACTIVE,
    JobStatus.CANCELLED: ACTIVE,
}


def move_job(
    session: Session,
    job_id: uuid.UUID,
    to: JobStatus,
    data: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Move a job to ``to`` if its current state allows it; False if someone else moved it."""
    if to in (JobStatus.RUNNING,):
        values.setdefault("started_at", utcnow())
    if to in FINAL:
        values.setdefault("finished_at", utcnow())
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(JOB_TRANSITIONS[to]))
        .values(status=to.value, **values)
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        return False
    session.add(JobEvent(job_id=job_id, kind=f"job.{to.value}", data=data or {}))
    return True
