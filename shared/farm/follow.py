"""A job's audio as its chunks are made, for someone listening while the farm works (OpenAI's
speech endpoint streams from here): each chunk in programme order as soon as it and every
chunk before it are done, after its pause, at a gain and under a peak ceiling.

The job itself goes on through the farm as any other (its chapters and files are stitched,
it succeeds, it is listed), so what is followed here is only read: chunk rows from Postgres,
chunk PCM from the object store. The stitch brings each chapter to the loudness target with
one gain measured over all its chunks; a listener cannot wait for the last chunk, so here each
chunk gets the gain that brings the speech heard so far, itself included, to that target.
"""

from __future__ import annotations

import uuid

import numpy as np
from sqlalchemy import bindparam, select

from shared.audio.finish import ChunkStats
from shared.audio.presets import Mastering
from shared.audio.programme import loudness_gain, pause_before, shape
from shared.farm.context import FarmContext
from shared.farm.states import ChunkStatus, JobStatus
from shared.infra.models import Chunk, Job
from shared.infra.storage import chunk_audio_key, get_pcm
from shared.text.chunking import Boundary

_JOB = select(Job.status, Job.error, Job.chunks_total, Job.mastering).where(
    Job.id == bindparam("job")
)
_CHUNKS_FROM = (
    select(
        Chunk.index.label("chunk"),  # not "index": a row's own method
        Chunk.boundary,
        Chunk.pause_s,
        Chunk.status,
        Chunk.samples,
        Chunk.loudness_steps,
        Chunk.true_peak,
        Chunk.energy,
    )
    .where(Chunk.job_id == bindparam("job"))
    .order_by(Chunk.chapter, Chunk.index)  # programme order
    .offset(bindparam("heard"))
)


class JobEnded(Exception):
    """The job failed, was cancelled or was deleted before all its audio was made."""


class ChunkFollower:
    """Call :meth:`poll` until :attr:`finished`: each call gives the chunks done since the
    last one that follow on from those given before, as (pause samples before it, PCM)."""

    def __init__(self, farm: FarmContext, job_id: uuid.UUID) -> None:
        self.farm, self.job_id = farm, job_id
        self.heard = 0  # chunks given so far, in programme order
        self.total: int | None = None  # the job's chunks, once read
        self._stats: list[ChunkStats] = []
        self._pauses: list[int] = []

    @property
    def finished(self) -> bool:
        return self.total is not None and self.heard >= self.total

    def poll(self) -> list[tuple[int, np.ndarray]]:
        with self.farm.sessions() as session:
            job = session.execute(_JOB, {"job": self.job_id}).one_or_none()
            rows = session.execute(_CHUNKS_FROM, {"job": self.job_id, "heard": self.heard}).all()
        if job is None:
            raise JobEnded("the job was deleted")
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobEnded(f"the job {job.status}" + (f": {job.error}" if job.error else ""))
        self.total = job.chunks_total
        mastering = Mastering.model_validate(job.mastering)
        ready = []
        for row in rows:
            if row.status != ChunkStatus.DONE:
                break
            stats = ChunkStats.from_row(row.samples, row.loudness_steps, row.true_peak, row.energy)
            ready.append((row.chunk, Boundary(row.boundary), row.pause_s, stats))
        return [self._heard(*chunk, mastering) for chunk in ready]

    def _heard(
        self,
        index: int,
        boundary: Boundary,
        pause_s: float | None,
        stats: ChunkStats,
        mastering: Mastering,
    ) -> tuple[int, np.ndarray]:
        settings = self.farm.settings.audio
        pause = pause_before(boundary, pause_s, settings) if self.heard else 0
        self._stats.append(stats)
        self._pauses.append(pause)
        gain = loudness_gain(self._stats, self._pauses, mastering.target)
        pcm = get_pcm(self.farm.store, chunk_audio_key(str(self.job_id), index))
        self.heard += 1
        return pause, shape(pcm, stats, gain, mastering.ceiling_db)
