"""The stitch stage: a job's chunks read from the object store in order, joined with pauses and
one gain, encoded as they stream, uploaded in parts; then the job succeeds.

The chunks' loudness is in their rows, so the programme's gain is known before the first
sample is read, and memory does not grow with the length of the book.
"""

from __future__ import annotations

import tempfile
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from time import monotonic

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.audio.encode import ENCODINGS, AudioWriter
from shared.audio.finish import ChunkStats
from shared.audio.programme import MP3_SEAM, join_chunks, mp3_seam, pause_samples, programme_gain
from shared.farm.context import Farm
from shared.farm.jobs import notify
from shared.farm.states import JobStatus
from shared.farm.transitions import CLAIM_STITCH, RENEW_STITCH_LEASE, move_job
from shared.infra.models import Chunk
from shared.infra.storage import chunk_audio_key, get_pcm, output_key
from shared.text.chunking import Boundary

# Chunks read ahead of the encoder, all at once: S3 answers a GET in 10-30 ms, and a 10-hour
# programme has thousands of chunks, while the encoder takes 5-30 ms per chunk. Each stream
# (two for a long MP3) holds at most 4 chunks of 30 s, 12 MB, waiting.
READ_AHEAD = READERS = 4


@dataclass(frozen=True)
class _Part:
    index: int
    boundary: Boundary
    stats: ChunkStats


def _parts(session: Session, job_id: uuid.UUID) -> list[_Part]:
    rows = session.execute(
        select(Chunk.index, Chunk.boundary, Chunk.samples, Chunk.loudness_steps, Chunk.true_peak)
        .where(Chunk.job_id == job_id)
        .order_by(Chunk.index)
    )
    return [
        _Part(
            index,
            Boundary(boundary),
            ChunkStats(samples or 0, np.frombuffer(steps or b"", "<f8"), peak or 0.0),
        )
        for index, boundary, samples, steps, peak in rows
    ]


def stitch_job(farm: Farm, job_id: uuid.UUID) -> bool:
    """Stitch stage: stream the chunks in order, one gain, encode, multipart upload."""
    with farm.sessions() as session:
        claimed = session.execute(CLAIM_STITCH, {"job": job_id, "lease": farm.lease()}).first()
        if claimed is None:  # not running, not every chunk done, or already stitched
            return False
        parts, fmt, title = _parts(session, job_id), claimed.format, claimed.title
    audio = farm.settings.audio
    pauses = [pause_samples(p.boundary, audio) for p in parts]
    gain = programme_gain([p.stats for p in parts], pauses, audio)
    key = output_key(str(job_id), fmt)
    with tempfile.TemporaryDirectory(prefix="lyre-stitch-") as tmp:
        path = Path(tmp) / f"output.{fmt}"
        samples = _encode(farm, job_id, parts, pauses, gain, path, fmt, title)
        _renew_lease(farm, job_id)  # for the upload
        farm.store.upload_file(key, path, ENCODINGS[fmt].content_type)
    with farm.sessions() as session:
        done = move_job(
            session,
            job_id,
            JobStatus.SUCCEEDED,
            output_key=key,
            output_samples=samples,
            stitch_lease_until=None,
        )
        delivery = notify(farm, session, job_id, "job.succeeded") if done else None
    if delivery:
        farm.send.deliver(delivery)
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
                _renew_lease(farm, job_id)
                renewed = monotonic()
            if i + READ_AHEAD < len(parts):
                ahead.append(read(parts[i + READ_AHEAD]))
            yield pause, ahead.popleft().result()


def _renew_lease(farm: Farm, job_id: uuid.UUID) -> None:
    with farm.bookkeeping() as connection:
        connection.execute(RENEW_STITCH_LEASE, {"job": job_id, "lease": farm.lease()})
