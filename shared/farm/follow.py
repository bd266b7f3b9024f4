"""A job's audio as its chunks are made, for someone listening while the farm works (OpenAI's
speech endpoint and the WebSocket stream from here): each chunk in programme order, after its
pause, at a gain and under a peak ceiling — from its live stream while the engine makes it
(``shared.farm.hearing``), or, once it is stored, from the object store.

The job itself goes on through the farm as any other (its chapters and files are stitched,
it succeeds, it is listed), so what is followed here is only read: chunk rows from Postgres,
streams from Redis, chunk PCM from the object store. A chunk whose stream stops short (its
worker died, Redis lost it) is finished from its stored audio once the farm has remade it,
from the sample where the stream stopped.

The stitch brings each chapter to the loudness target with one gain measured over all its
chunks; a listener cannot wait for the last chunk, so here each chunk gets the gain that brings
the speech heard before it to that target (the first plays at the engine's own level), whether
it is heard live or stored: the same samples either way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from sqlalchemy import Row, bindparam, select

from shared.audio.finish import ChunkStats
from shared.audio.limiter import limit_peaks
from shared.audio.presets import Mastering
from shared.audio.programme import loudness_gain, pause_before
from shared.farm.context import FarmContext
from shared.farm.hearing import LiveChunk
from shared.farm.live import LiveReader, live_reader
from shared.farm.seeds import chunk_seed
from shared.farm.states import ChunkStatus, JobStatus
from shared.infra.models import Chunk, Job
from shared.infra.storage import chunk_audio_key, get_pcm
from shared.text.chunking import Boundary

_JOB = select(Job.status, Job.error, Job.chunks_total, Job.mastering, Job.seed).where(
    Job.id == bindparam("job")
)
_CHUNKS_FROM = (
    select(
        Chunk.index.label("chunk"),  # not "index": a row's own method
        Chunk.boundary,
        Chunk.pause_s,
        Chunk.status,
        Chunk.take,
        Chunk.samples,
        Chunk.loudness_steps,
        Chunk.true_peak,
        Chunk.energy,
    )
    .where(Chunk.job_id == bindparam("job"))
    .order_by(Chunk.chapter, Chunk.index)  # programme order
    .offset(bindparam("heard"))
    .limit(64)
)


class JobEnded(Exception):
    """The job failed, was cancelled or was deleted before all its audio was made."""


class JobAudio:
    """Iterate :meth:`pcm` for the job's audio: float32 pieces at the farm's rate, pauses
    included, in programme order; an empty piece each time it looked and found nothing new,
    so that the caller can give up on a farm that makes nothing."""

    def __init__(self, farm: FarmContext, job_id: uuid.UUID) -> None:
        self.farm, self.job_id = farm, job_id
        self.heard = 0  # chunks heard to their end, in programme order
        self.begun = 0  # chunks whose audio has begun
        self.total: int | None = None  # the job's chunks, once read
        self._stats: list[ChunkStats] = []
        self._pauses: list[int] = []
        self._live: LiveChunk | None = None  # the chunk being heard from its stream
        self._gain = 1.0  # the gain of the chunk being heard
        self._pause_due = 0  # samples of its pause not given out yet

    @property
    def finished(self) -> bool:
        return self.total is not None and self.heard >= self.total

    async def pcm(self) -> AsyncIterator[np.ndarray]:
        poll_s = self.farm.settings.speech.poll_s
        reader = live_reader(self.farm.settings) if self.farm.settings.speech.live else None
        try:
            while not self.finished:
                job, rows = await asyncio.to_thread(self._read)
                mastering = Mastering.model_validate(job.mastering)
                for row in rows:
                    if row.status != ChunkStatus.DONE:
                        break
                    yield await asyncio.to_thread(self._stored, row, mastering)
                else:
                    continue
                if reader is None:
                    yield np.zeros(0, np.float32)
                    await asyncio.sleep(poll_s)
                    continue
                async for piece in self._live_until_quiet(reader, job, row, mastering):
                    yield piece
        finally:
            if reader is not None:
                await reader.aclose()

    def _read(self) -> tuple[Row[Any], list[Row[Any]]]:
        with self.farm.sessions() as session:
            job = session.execute(_JOB, {"job": self.job_id}).one_or_none()
            rows: list[Any] = list(
                session.execute(_CHUNKS_FROM, {"job": self.job_id, "heard": self.heard})
            )
        if job is None:
            raise JobEnded("the job was deleted")
        if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            raise JobEnded(f"the job {job.status}" + (f": {job.error}" if job.error else ""))
        self.total = job.chunks_total
        return job, rows

    async def _live_until_quiet(
        self, reader: LiveReader, job: Row[Any], row: Row[Any], mastering: Mastering
    ) -> AsyncIterator[np.ndarray]:
        """The next chunk's pieces from its stream, while they keep coming; then back to its
        row, which may say it is stored. A read waits up to ``speech.poll_s`` for a stream not
        begun (the chunk may be made without one), and up to ``speech.live_quiet_s`` for one
        that has: the engine's next frame is 85 ms of audio away, and a shorter wait would
        read the job's rows from Postgres between every two frames of every listener."""
        live = self._live
        if live is None or live.index != row.chunk:
            seed = chunk_seed(self.job_id, row.chunk, job.seed)
            live = self._live = LiveChunk(self.farm.settings, self.job_id, row.chunk, seed)
            self._start(row, mastering)
        speech = self.farm.settings.speech
        while live.done is None and not live.broken:
            came, pieces = await live.hear(
                reader, speech.poll_s if live.take is None else speech.live_quiet_s
            )
            for pcm in pieces:
                yield self._shaped(pcm, mastering)
            if not came:
                break
        if live.done is not None:
            self._end(live.done)
            return
        yield np.zeros(0, np.float32)  # nothing new: the caller's clock runs
        if live.broken:  # only the stored chunk can finish it
            await asyncio.sleep(speech.poll_s)

    def _start(self, row: Row[Any], mastering: Mastering) -> None:
        """A chunk begins: its pause is due (none before the first), and its gain is the one
        that brings the speech heard before it to the target."""
        self._gain = loudness_gain(self._stats, self._pauses, mastering.target)
        settings = self.farm.settings.audio
        pause = pause_before(Boundary(row.boundary), row.pause_s, settings) if self.heard else 0
        self._pauses.append(pause)
        self._pause_due = pause
        self.begun += 1

    def _end(self, stats: ChunkStats) -> None:
        self._stats.append(stats)
        self._live = None
        self.heard += 1

    def _stored(self, row: Row[Any], mastering: Mastering) -> np.ndarray:
        """A stored chunk, or the rest of one heard in part from its stream."""
        stats = ChunkStats.from_row(row.samples, row.loudness_steps, row.true_peak, row.energy)
        live, start = self._live, 0
        if live is None or live.index != row.chunk:
            self._start(row, mastering)
        elif live.take == row.take:  # the same take: it goes on where the stream stopped
            start = live.samples
        pcm = get_pcm(self.farm.store, chunk_audio_key(str(self.job_id), row.chunk))[start:]
        self._end(stats)
        return self._shaped(pcm, mastering)

    def _shaped(self, pcm: np.ndarray, mastering: Mastering) -> np.ndarray:
        """At the chunk's gain, its peaks under the ceiling, after its pause if that is due."""
        out = limit_peaks(pcm * np.float32(self._gain), mastering.ceiling_db)
        if self._pause_due:
            out = np.concatenate([np.zeros(self._pause_due, np.float32), out])
            self._pause_due = 0
        return out
