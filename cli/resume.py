"""Resuming ``lyre synth`` in a work directory: a run that was interrupted left its job, its
chunks and their audio in the directory's SQLite and folder; the same input sent again goes on
from there instead of starting over."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from shared.farm.context import FarmContext
from shared.farm.states import ChapterStatus, ChunkStatus, JobStatus
from shared.infra.models import Chapter, Chunk, Job


def resume(farm: FarmContext, job_id: uuid.UUID) -> list[int] | None:
    """Send the work the job still owes and return the chunks already done; None when there
    is no job to resume (none, or one that failed or was cancelled: it is made again)."""
    with farm.sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            return None
        chunks = session.execute(
            select(Chunk.index, Chunk.chapter, Chunk.status).where(Chunk.job_id == job_id)
        ).all()
        waiting = set(
            session.scalars(
                select(Chapter.index).where(
                    Chapter.job_id == job_id, Chapter.status == ChapterStatus.WAITING
                )
            )
        )
        status = job.status
    done = [index for index, _, state in chunks if state == ChunkStatus.DONE]
    if status == JobStatus.SUCCEEDED:
        return done
    unfinished = {chapter for _, chapter, state in chunks if state != ChunkStatus.DONE}
    for index, _, state in chunks:
        if state == ChunkStatus.PENDING:
            farm.send.generate(job_id, index)
        elif state == ChunkStatus.GENERATED:
            farm.send.decode(job_id, index)
    for chapter in sorted(waiting - unfinished):
        farm.send.stitch_chapter(job_id, chapter)
    if not waiting and not unfinished:
        farm.send.stitch(job_id)
    return done
