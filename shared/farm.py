"""The farm's stage functions. Celery tasks in ``workers/`` are thin wrappers around these.

Every stage takes ids, re-reads its rows and is idempotent; every state change is a
compare-and-set, so a redelivered or duplicated message does no harm. Slow work (generation,
decode, encoding, upload) happens outside transactions.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from time import monotonic
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from sqlalchemy import Connection, Row, bindparam, case, func, literal_column, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from shared import outbox
from shared.audio import ChunkStats
from shared.chunking import Boundary
from shared.encode import AudioWriter
from shared.engines import SpeechRequest
from shared.engines.base import Engine, EngineLoop
from shared.models import Chunk, Job, utcnow
from shared.pipeline import chunk_seed, generate_speech, render_speech
from shared.settings import Settings
from shared.states import ACTIVE, ChunkStatus, JobStatus, move_job
from shared.stitch import MP3_SEAM, join_chunks, mp3_seam, pause_samples, programme_gain
from shared.storage import (
    ObjectStore,
    chunk_audio_key,
    get_pcm,
    output_key,
    put_pcm,
    speech_from_bytes,
    speech_to_bytes,
)

if TYPE_CHECKING:  # torch stays out of processes that never decode (api, stitch)
    from shared.decoder import SnacDecoder

CONTENT_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "opus": "audio/ogg"}


class SpeechMissing(RuntimeError):
    """A generated chunk has no speech stored."""


class Dispatch(Protocol):
    """Sends work to the queues (Celery in the farm)."""

    def generate(self, job_id: uuid.UUID, index: int) -> None: ...
    def decode(self, job_id: uuid.UUID, index: int) -> None: ...
    def stitch(self, job_id: uuid.UUID) -> None: ...
    def deliver(self, delivery_id: str, delay_s: float = 0) -> None: ...


@dataclass
class Farm:
    """What the stages run against. ``sessions`` opens a durable transaction
    (``shared.db.session_scope``); ``bookkeeping`` a connection for one statement of a stage's
    own state changes, committed on its own without waiting for the disk
    (``shared.db.bookkeeping_scope``, which says why that is safe)."""

    settings: Settings
    store: ObjectStore
    dispatch: Dispatch
    sessions: Callable[[], AbstractContextManager[Session]]
    bookkeeping: Callable[[], AbstractContextManager[Connection]]

    def lease(self) -> datetime:
        return utcnow() + timedelta(seconds=self.settings.farm.lease_s)


# The stages' statements are built once and run on a Core connection: building and
# ORM-executing an UPDATE costs more CPU than the database spends on it.
_JOB_STATUS = select(Job.status).where(Job.id == Chunk.job_id).scalar_subquery()
# written into the SQL: an IN list of bound values is re-rendered at every execution
_JOB_IS_ACTIVE = _JOB_STATUS.in_([literal_column(f"'{status}'") for status in ACTIVE])
_THIS_CHUNK = (Chunk.job_id == bindparam("job"), Chunk.index == bindparam("idx"))


def _claim_statement(status: ChunkStatus, *columns: InstrumentedAttribute[Any]) -> Any:
    """Take a chunk in ``status`` of an active job, extending its lease and counting the
    attempt: one UPDATE … RETURNING the job's status and ``columns``."""
    return (
        update(Chunk)
        .where(*_THIS_CHUNK, Chunk.status == status, _JOB_IS_ACTIVE)
        .values(lease_until=bindparam("lease"), attempts=Chunk.attempts + 1)
        .returning(_JOB_STATUS, *columns)
    )


_CLAIM_TO_GENERATE = _claim_statement(ChunkStatus.PENDING, Chunk.text, Chunk.voice)
_CLAIM_TO_DECODE = _claim_statement(ChunkStatus.GENERATED, Chunk.speech)
# SET comes from the parameters that name columns
_ADVANCE = update(Chunk).where(*_THIS_CHUNK, Chunk.status == bindparam("current"))
# The end of a decode: the chunk is done, and counted on its job. Exactly one decode of a job
# sees chunks_done reach chunks_total; that one sets the stitch's lease and sends the stitch.
_DONE = (
    update(Chunk)
    .where(*_THIS_CHUNK, Chunk.status == ChunkStatus.GENERATED)
    .values(
        status=ChunkStatus.DONE,
        samples=bindparam("n"),
        true_peak=bindparam("peak"),
        loudness_steps=bindparam("steps"),
        done_at=bindparam("at"),
        decode_s=bindparam("seconds"),
        lease_until=None,
        speech=None,  # decoded: the row keeps only what the stitch needs
    )
)
_LAST = Job.chunks_done + 1 == Job.chunks_total
_COUNT_DONE = (
    update(Job)
    .where(Job.id == bindparam("job"), Job.status == JobStatus.RUNNING)
    .values(
        chunks_done=Job.chunks_done + 1,
        audio_samples=Job.audio_samples + bindparam("n"),
        stitch_lease_until=case((_LAST, bindparam("lease")), else_=Job.stitch_lease_until),
    )
    .returning((Job.chunks_done == Job.chunks_total).label("last"))
)
# Postgres runs both as one statement: a round trip instead of four (BEGIN, two, COMMIT).
_MOVED = _DONE.returning(Chunk.index).cte("moved")
_COUNTED = _COUNT_DONE.where(select(_MOVED).exists()).cte("counted")
_DONE_AND_COUNTED = select(
    select(_MOVED).exists(), func.coalesce(select(_COUNTED.c.last).scalar_subquery(), False)
)


def _claim(farm: Farm, job_id: uuid.UUID, index: int, claim: Any) -> Row[Any] | None:
    """Run a claim statement on a chunk; its row, or None if the chunk is not ours."""
    params = {"job": job_id, "idx": index, "lease": farm.lease()}
    with farm.bookkeeping() as connection:
        return connection.execute(claim, params).one_or_none()


def _advance(
    farm: Farm,
    job_id: uuid.UUID,
    index: int,
    current: ChunkStatus,
    to: ChunkStatus,
    **values: object,
) -> bool:
    """Compare-and-set a chunk from ``current`` to ``to``; False if it was no longer there."""
    params = {"job": job_id, "idx": index, "current": current, "status": to, **values}
    with farm.bookkeeping() as connection:
        return bool(connection.execute(_ADVANCE, params).rowcount)


def generate_chunk(
    farm: Farm, loop: EngineLoop, engine: Engine, job_id: uuid.UUID, index: int
) -> bool:
    """GPU stage: text to codes (or PCM), stored; then the chunk goes to decode."""
    claimed = _claim(farm, job_id, index, _CLAIM_TO_GENERATE)
    if claimed is None:
        return False
    job_status, text, voice = claimed[0], claimed.text, claimed.voice
    if job_status == JobStatus.QUEUED:
        with farm.sessions() as session:
            move_job(session, job_id, JobStatus.RUNNING)  # the first chunk starts the job
    request = SpeechRequest(f"{job_id}-{index}", text, voice, chunk_seed(str(job_id), index))
    started = time.perf_counter()
    speech = generate_speech(loop, engine, request)
    generate_s = time.perf_counter() - started
    moved = _advance(
        farm,
        job_id,
        index,
        ChunkStatus.PENDING,
        ChunkStatus.GENERATED,
        speech=speech_to_bytes(speech),
        tokens=speech.tokens,
        dropped_tokens=speech.codes.dropped_tokens if speech.codes else 0,
        generated_at=utcnow(),
        lease_until=farm.lease(),
        generate_s=generate_s,
    )
    if moved:
        farm.dispatch.decode(job_id, index)
    return moved


def decode_chunk(farm: Farm, decoder: SnacDecoder | None, job_id: uuid.UUID, index: int) -> bool:
    """CPU stage: codes to finished PCM and loudness; the last chunk of a job sends the stitch."""
    claimed = _claim(farm, job_id, index, _CLAIM_TO_DECODE)
    if claimed is None:
        return False
    if claimed.speech is None:  # the task retries, and fails the job when out of attempts
        raise SpeechMissing(f"chunk {index} of job {job_id}")
    speech = speech_from_bytes(claimed.speech)
    started = time.perf_counter()
    seed = chunk_seed(str(job_id), index)
    pcm, stats = render_speech(speech, decoder, seed, farm.settings.audio)
    decode_s = time.perf_counter() - started
    put_pcm(farm.store, chunk_audio_key(str(job_id), index), pcm)
    done = {
        "job": job_id,
        "idx": index,
        "n": stats.samples,
        "peak": stats.peak,
        "steps": stats.steps.astype("<f8").tobytes(),
        "at": utcnow(),
        "seconds": decode_s,
        "lease": farm.lease(),
    }
    with farm.bookkeeping() as connection:
        if connection.dialect.name == "postgresql":
            moved, last = connection.execute(_DONE_AND_COUNTED, done).one()
        else:  # SQLite has no UPDATE in WITH; its bookkeeping block is a transaction
            moved = bool(connection.execute(_DONE, done).rowcount)
            last = moved and bool(connection.execute(_COUNT_DONE, done).scalar())
    if not moved:
        return False
    if last:
        farm.dispatch.stitch(job_id)
    return True


@dataclass(frozen=True)
class _Part:
    index: int
    boundary: Boundary
    stats: ChunkStats


def _parts(session: Session, job_id: uuid.UUID) -> list[_Part]:
    rows = session.scalars(select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.index))
    return [
        _Part(
            row.index,
            Boundary(row.boundary),
            ChunkStats(
                row.samples or 0,
                np.frombuffer(row.loudness_steps or b"", "<f8"),
                row.true_peak or 0.0,
            ),
        )
        for row in rows
    ]


def stitch_job(farm: Farm, job_id: uuid.UUID) -> bool:
    """Stitch stage: stream the chunks in order, one gain, encode, multipart upload."""
    with farm.sessions() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.RUNNING or job.chunks_done != job.chunks_total:
            return False
        job.stitch_lease_until = farm.lease()  # type: ignore[assignment]
        parts, fmt, title = _parts(session, job_id), job.format, job.title
    audio = farm.settings.audio
    pauses = [pause_samples(p.boundary, audio) for p in parts]
    gain = programme_gain([p.stats for p in parts], pauses, audio)
    key = output_key(str(job_id), fmt)
    with tempfile.TemporaryDirectory(prefix="lyre-stitch-") as tmp:
        path = Path(tmp) / f"output.{fmt}"
        samples = _encode(farm, job_id, parts, pauses, gain, path, fmt, title)
        _renew_stitch_lease(farm, job_id)  # for the upload
        farm.store.upload_file(key, path, CONTENT_TYPES[fmt])
    with farm.sessions() as session:
        done = move_job(
            session,
            job_id,
            JobStatus.SUCCEEDED,
            data={"output_key": key, "samples": samples},
            output_key=key,
            output_samples=samples,
            stitch_lease_until=None,
        )
        delivery = _notify(session, job_id, "job.succeeded") if done else None
    if delivery:
        farm.dispatch.deliver(delivery)
    return done


def _encode(
    farm: Farm,
    job_id: uuid.UUID,
    parts: list[_Part],
    pauses: list[int],
    gain: float,
    path: Path,
    fmt: str,
    title: str | None,
) -> int:
    """Write the programme to ``path``; return its samples. A long MP3 is encoded as two
    halves at once (LAME is the stitch's bottleneck and PyAV releases the GIL while it runs),
    joined at a seam inside a pause."""
    bitrate = farm.settings.audio.bitrate_kbps
    seam = mp3_seam(pauses, [p.stats.samples for p in parts]) if fmt == "mp3" else None
    with AudioWriter(path, fmt, bitrate, title) as writer:
        if seam is None:
            return join_chunks(_stream(farm, job_id, parts, pauses), gain, writer)
        k = seam.index
        second = path.with_name("second-half.mp3")
        with ThreadPoolExecutor(1, "lyre-stitch") as pool:
            later = pool.submit(
                _encode_part, farm, job_id, parts[k:], [seam.tail, *pauses[k + 1 :]], gain, second
            )
            samples = join_chunks(_stream(farm, job_id, parts[:k], pauses[:k]), gain, writer)
            writer.write(np.zeros(seam.head, np.float32))
            samples += seam.head + later.result() + MP3_SEAM  # what the second encoder put ahead
        writer.append_encoded(second)
    return samples


def _encode_part(
    farm: Farm, job_id: uuid.UUID, parts: list[_Part], pauses: list[int], gain: float, path: Path
) -> int:
    with AudioWriter(path, "mp3", farm.settings.audio.bitrate_kbps) as writer:
        return join_chunks(_stream(farm, job_id, parts, pauses), gain, writer)


# Chunks read ahead of the encoder, all at once: S3 answers a GET in 10-30 ms, and a 10-hour
# programme has thousands of chunks, while the encoder takes 5-30 ms per chunk. Each stream
# (two for a long MP3) holds at most 4 chunks of 30 s, 12 MB, waiting.
READ_AHEAD = READERS = 4


def _stream(
    farm: Farm, job_id: uuid.UUID, parts: list[_Part], pauses: list[int]
) -> Iterator[tuple[int, np.ndarray]]:
    """Each chunk's PCM in order, read ahead. A long programme takes minutes to encode, so the
    stitch renews its lease every quarter lease: the reconciler must not hand it to a second
    stitch."""
    renewed = monotonic()
    with ThreadPoolExecutor(READERS, "lyre-read") as readers:

        def read(part: _Part) -> Future[np.ndarray]:
            return readers.submit(get_pcm, farm.store, chunk_audio_key(str(job_id), part.index))

        ahead = deque(read(part) for part in parts[:READ_AHEAD])
        for i, (_, pause) in enumerate(zip(parts, pauses, strict=True)):
            if monotonic() - renewed > farm.settings.farm.lease_s / 4:
                _renew_stitch_lease(farm, job_id)
                renewed = monotonic()
            if i + READ_AHEAD < len(parts):
                ahead.append(read(parts[i + READ_AHEAD]))
            yield pause, ahead.popleft().result()


def _renew_stitch_lease(farm: Farm, job_id: uuid.UUID) -> None:
    with farm.bookkeeping() as connection:
        connection.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
            .values(stitch_lease_until=farm.lease())
        )


def _notify(session: Session, job_id: uuid.UUID, event_type: str) -> str | None:
    session.flush()
    job = session.get(Job, job_id, populate_existing=True)
    return outbox.add_event(session, job, event_type) if job else None


def fail_job(farm: Farm, job_id: uuid.UUID, error: str) -> bool:
    """Mark a job failed (a stage gave up on it) and queue its webhook."""
    with farm.sessions() as session:
        failed = move_job(session, job_id, JobStatus.FAILED, data={"error": error}, error=error)
        delivery = _notify(session, job_id, "job.failed") if failed else None
    if delivery:
        farm.dispatch.deliver(delivery)
    return failed


def cancel_job(farm: Farm, job_id: uuid.UUID) -> bool:
    """Cancel a queued or running job: its waiting chunks stop, no further one is generated."""
    with farm.sessions() as session:
        if not move_job(session, job_id, JobStatus.CANCELLED):
            return False
        session.execute(
            update(Chunk)
            .where(
                Chunk.job_id == job_id,
                Chunk.status.in_([ChunkStatus.PENDING, ChunkStatus.GENERATED]),
            )
            .values(status=ChunkStatus.CANCELLED, lease_until=None)
        )
        delivery = _notify(session, job_id, "job.cancelled")
    if delivery:
        farm.dispatch.deliver(delivery)
    return True
