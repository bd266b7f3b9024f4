"""The stitch stages: a chapter's file as soon as its chunks are done, then the book's files once
every chapter is; each read from the object store in order, joined with pauses and the
chapter's gain, encoded as it streams, uploaded in parts.

The chunks' loudness is in their rows, so every gain is known before the first sample is read,
and memory does not grow with the length of the book.
"""

from __future__ import annotations

import tempfile
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, func, select

from shared.audio import SAMPLE_RATE, acx
from shared.audio.encode import ENCODINGS, AudioWriter
from shared.audio.finish import ChunkStats
from shared.audio.presets import Mastering
from shared.audio.programme import Layout, Part, lay_out, shape
from shared.audio.segments import padded
from shared.farm import outputs
from shared.farm.checked import chapter_checks
from shared.farm.context import FarmContext
from shared.farm.leases import (
    CLAIM_CHAPTER,
    LEASE_BOOK_STITCH,
    RELEASE_CHAPTER,
    RENEW_CHAPTER_LEASE,
    Lease,
    LeaseLost,
)
from shared.farm.states import ChapterStatus
from shared.farm.transitions import CHAPTER_WAITING_TO_DONE, COUNT_STITCH
from shared.infra.cpu import CpuClock
from shared.infra.models import Chapter, Chunk, Job, utcnow
from shared.infra.storage import chunk_audio_key, get_pcm, output_key
from shared.text.chunking import Boundary

# Taken first in the transaction that finishes a chapter: chapters of one job finishing at once
# take turns, so the last to commit sees no chapter waiting and sends the book's stitch.
LOCK_JOB = select(Job.id).where(Job.id == bindparam("job")).with_for_update()

# Chunks read ahead of the encoder, all at once: S3 answers a GET in 10-30 ms, and a 10-hour
# programme has thousands of chunks, while the encoder takes 5-30 ms per chunk. Each stream
# (two for a long MP3) holds at most 4 chunks of 30 s, 12 MB, waiting.
READ_AHEAD = READERS = 4
ROOM_TONE_DBFS = -72.0  # far under ACX's noise floor limit, and not digital silence


def read_parts(farm: FarmContext, job_id: uuid.UUID, chapter: int | None = None) -> list[Part]:
    """The job's chunks (or one chapter's) in programme order, with their statistics."""
    query = select(
        Chunk.index,
        Chunk.chapter,
        Chunk.boundary,
        Chunk.samples,
        Chunk.loudness_steps,
        Chunk.true_peak,
        Chunk.energy,
        func.coalesce(Chunk.caption, Chunk.text),
        Chunk.pause_s,
        Chunk.marks,
    ).where(Chunk.job_id == job_id)
    if chapter is not None:
        query = query.where(Chunk.chapter == chapter)
    with farm.sessions() as session:
        rows = session.execute(query.order_by(Chunk.chapter, Chunk.index)).all()
    return [
        Part(
            index,
            chapter,
            Boundary(boundary),
            ChunkStats.from_row(samples, steps, peak, energy),
            caption,
            pause_s,
            tuple((name, at) for name, at in marks or ()),
        )
        for index, chapter, boundary, samples, steps, peak, energy, caption, pause_s, marks in rows
    ]


def stitch_chapter(
    farm: FarmContext, job_id: uuid.UUID, chapter: int, urgent: bool = False
) -> bool:
    """A chapter's own file, between room tone, tagged, measured against ACX when asked; the
    chapter that completes the book sends the book's stitch (ahead of books' if ``urgent``, a
    short job's). Its lease is held while it works: a second stitch of the chapter starts only
    once this one has stopped renewing it, and then this one writes nothing more."""
    lease = Lease(farm, RENEW_CHAPTER_LEASE, RELEASE_CHAPTER, job=job_id, chapter=chapter)
    claimed = lease.claim(CLAIM_CHAPTER)
    if claimed is None:  # not waiting, a chunk not done, the job ended, or another has it
        return False
    try:
        with lease:
            moved, waiting = _make_chapter(farm, lease, job_id, chapter, claimed)
    except LeaseLost:  # the stitch that holds it now makes it
        return False
    if moved and not waiting:
        farm.send.stitch(job_id, urgent=urgent)
    return moved


def _make_chapter(
    farm: FarmContext, lease: Lease, job_id: uuid.UUID, chapter: int, claimed: Any
) -> tuple[bool, int]:
    """Make the chapter's file and mark the chapter done; whether it moved, and how many of
    the job's chapters still wait."""
    with farm.sessions() as session:
        job = session.get(Job, job_id)
        total = session.scalar(select(func.count()).where(Chapter.job_id == job_id))
    assert job is not None
    mastering = Mastering.model_validate(job.mastering)
    key, samples, report = None, None, None
    cost = StitchCost()
    if not is_the_programme(mastering, total or 1):  # else the book's stitch lists it
        with cost.total.counting():
            key, samples, report = _chapter_file(
                farm, lease, job, chapter, claimed, total or 1, mastering, cost
            )
    done = {**lease.params, "made_for": claimed.version, "key": key, "n": samples}
    with farm.sessions() as session:
        session.execute(LOCK_JOB, done)
        lease.release_in(session)  # LeaseLost, and nothing written, if another holds it
        done.update(report=report, checks=chapter_checks(session, job_id, chapter), at=utcnow())
        done.update(cost.params())
        result = session.execute(CHAPTER_WAITING_TO_DONE, done)
        moved = bool(result.rowcount)  # type: ignore[attr-defined]
        if moved:
            session.execute(COUNT_STITCH, done)
        waiting = session.scalar(
            select(func.count()).where(
                Chapter.job_id == job_id, Chapter.status == ChapterStatus.WAITING
            )
        )
        if moved and not waiting:  # the book's stitch, sent below, is leased from now
            session.execute(LEASE_BOOK_STITCH, {**done, "lease": farm.lease()})
    return moved, waiting or 0


def is_the_programme(mastering: Mastering, chapters: int) -> bool:
    """A book of one chapter whose file would be its programme, sample for sample: it is made
    once, by the book's stitch (the common case of a short job)."""
    return (
        chapters == 1
        and mastering.chapter_format == mastering.format
        and mastering.chapter_bitrate_kbps == mastering.bitrate_kbps
        and mastering.chapter_rate == SAMPLE_RATE
        and not (mastering.head_s or mastering.tail_s or mastering.acx_report)
    )


def _chapter_file(
    farm: FarmContext,
    lease: Lease,
    job: Job,
    chapter: int,
    claimed: Any,
    total: int,
    mastering: Mastering,
    cost: StitchCost,
) -> tuple[str, int, dict[str, Any] | None]:
    """Encode and upload the chapter's file, and its segments of the book's files, from one
    read of its chunks; the file's key, samples and ACX report."""
    parts = read_parts(farm, job.id, chapter)
    layout = lay_out(parts, [], farm.settings.audio, mastering)
    fmt = mastering.chapter_format
    name = outputs.chapter_name(chapter, fmt)
    key = output_key(str(job.id), claimed.version, name)
    tags = outputs.chapter_tags(job, claimed.title, chapter, total)
    with tempfile.TemporaryDirectory(prefix="lyre-chapter-") as tmp, ExitStack() as files:
        path = Path(tmp) / name
        writer = files.enter_context(
            AudioWriter(
                path,
                fmt,
                mastering.chapter_bitrate_kbps,
                tags,
                rate=mastering.chapter_rate,
                cpu=cost.encode,
            )
        )
        segments = {Path(tmp) / f"segment.{f}": f for f in segment_formats(mastering)}
        into = [
            files.enter_context(AudioWriter(p, f, mastering.bitrate_kbps, cpu=cost.encode))
            for p, f in segments.items()
        ]
        head = room_tone(round(mastering.head_s * SAMPLE_RATE), 2 * chapter)
        tail = room_tone(round(mastering.tail_s * SAMPLE_RATE), 2 * chapter + 1)
        writer.write(head)
        pauses = [0, *layout.pauses[1:]]
        toned = mastering.head_s or mastering.tail_s
        samples = len(head) + len(tail)
        for pause, pcm in stream_chunks(farm, job.id, parts, pauses, layout, lease, cost.total):
            silence = np.zeros(pause, np.float32)
            for out in (writer, *into):  # a segment's pauses are silence
                out.write(room_tone(pause, chapter) if toned and out is writer else silence)
                out.write(pcm)
            samples += pause + len(pcm)
        writer.write(tail)
        content = samples - len(head) - len(tail)
        for out, f in zip(into, segments.values(), strict=True):  # its last frame whole
            out.write(np.zeros(padded(f, content) - content, np.float32))
        files.close()
        measured = acx.measure(path) if mastering.acx_report else None
        report = acx.report(measured, constant_bitrate=True) if measured else None
        lease.renew()  # still ours: the files go where a later holder's would
        farm.store.upload_file(key, path, ENCODINGS[fmt].content_type)
        for segment, f in segments.items():
            at = segment_key(job.id, claimed.version, chapter, f)
            farm.store.upload_file(at, segment, ENCODINGS[f].content_type)
        cost.stored += sum(p.stat().st_size for p in Path(tmp).iterdir())
    return key, samples, report


def segment_formats(mastering: Mastering) -> list[str]:
    """The formats in which a chapter's stitch encodes its segment of the book's files
    (:mod:`shared.audio.segments`) beside its own file: the M4B's, and the MP3 programme's
    unless the chapter's file is that."""
    if mastering.format == "mp3" and not file_is_segment(mastering):
        return ["m4b", "mp3"]
    return ["m4b"]


def file_is_segment(mastering: Mastering) -> bool:
    """The chapter's own file is its segment of the MP3 programme: the same encoding, and no
    room tone."""
    return (
        mastering.format == mastering.chapter_format == "mp3"
        and mastering.chapter_bitrate_kbps == mastering.bitrate_kbps
        and mastering.chapter_rate == SAMPLE_RATE
        and not (mastering.head_s or mastering.tail_s)
    )


def segment_key(job_id: uuid.UUID, version: int, chapter: int, fmt: str) -> str:
    return output_key(str(job_id), version, f"segment-{chapter + 1:03d}.{fmt}")


class StitchCost:
    """What a stitch cost: CPU seconds in all and of them the encoders', and bytes stored."""

    def __init__(self) -> None:
        self.total, self.encode, self.stored = CpuClock(), CpuClock(), 0

    def params(self) -> dict[str, float | int]:
        encode = min(self.encode.seconds, self.total.seconds)
        return {
            "stitch_cpu": self.total.seconds - encode,
            "encode_cpu": encode,
            "stored": self.stored,
        }


def room_tone(samples: int, seed: int) -> np.ndarray:
    """Quiet noise, far under any noise floor limit: ACX's reviewers (and listeners) take
    pure digital silence in a narration for a gap, not a room."""
    level = 10 ** (ROOM_TONE_DBFS / 20)
    return (np.random.default_rng(seed).standard_normal(samples) * level).astype(np.float32)


def stream_chunks(
    farm: FarmContext,
    job_id: uuid.UUID,
    parts: Sequence[Part],
    pauses: Sequence[int],
    layout: Layout,
    lease: Lease,
    cpu: CpuClock,
) -> Iterator[tuple[int, np.ndarray]]:
    """Each chunk's PCM in order at its chapter's gain, read ahead (the readers' CPU counted
    on ``cpu``). A long programme takes minutes to encode while its lease is renewed; a stitch
    whose lease another stitch has taken stops at the next chunk (LeaseLost)."""
    with ThreadPoolExecutor(READERS, "lyre-read") as readers:
        get = cpu.counted(get_pcm)

        def read(part: Part) -> Future[np.ndarray]:
            return readers.submit(get, farm.store, chunk_audio_key(str(job_id), part.index))

        ahead = deque(read(part) for part in parts[:READ_AHEAD])
        for i, (part, pause) in enumerate(zip(parts, pauses, strict=True)):
            lease.check()
            if i + READ_AHEAD < len(parts):
                ahead.append(read(parts[i + READ_AHEAD]))
            pcm = ahead.popleft().result()
            yield pause, shape(pcm, part.stats, layout.gains[part.chapter], layout.ceiling_dbtp)
