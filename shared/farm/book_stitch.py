"""The book's stitch, once every chapter's file is made: the programme in the requested format,
an M4B (chapters, tags, cover), WebVTT and SRT captions and the chapter list, all of one
version; then the job succeeds with them as its outputs, and the files of the version before
that no output of the new one uses are removed.
"""

from __future__ import annotations

import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select, update

from shared.audio import SAMPLE_RATE
from shared.audio.captions import srt, webvtt
from shared.audio.encode import ENCODINGS, AudioWriter
from shared.audio.presets import Mastering
from shared.audio.programme import MP3_SEAM, Layout, Part, join_chunks, lay_out, mp3_seam
from shared.audio.segments import JOINED
from shared.farm import chapter_stitch, outputs
from shared.farm.book_join import Book, join
from shared.farm.chapter_stitch import StitchCost, is_the_programme, read_parts, segment_key
from shared.farm.checked import REVIEW_EVENT
from shared.farm.context import FarmContext
from shared.farm.jobs import notify
from shared.farm.leases import CLAIM_STITCH, RELEASE_STITCH, RENEW_STITCH_LEASE, Lease, LeaseLost
from shared.farm.read_along import make_read_along
from shared.farm.states import JobStatus
from shared.farm.transitions import move_job
from shared.infra.models import Chapter, Job
from shared.infra.storage import output_key


def stitch_job(farm: FarmContext, job_id: uuid.UUID) -> bool:
    """Book stage: every file of the book, uploaded; then the job succeeds. Its lease is held
    while it works: a second stitch starts only once this one has stopped renewing it, and
    then this one writes nothing more."""
    lease = Lease(farm, RENEW_STITCH_LEASE, RELEASE_STITCH, job=job_id)
    claimed = lease.claim(CLAIM_STITCH)
    if claimed is None:  # not running, a chapter not made, already stitched, or another has it
        return False
    try:
        with lease:
            return _make_book(farm, lease, job_id, claimed.version)
    except LeaseLost:  # the stitch that holds it now makes the files
        return False


def _make_book(farm: FarmContext, lease: Lease, job_id: uuid.UUID, version: int) -> bool:
    """Make the book's files as ``version`` and the job succeeds with them as its outputs."""
    with farm.sessions() as session:
        job = session.get(Job, job_id)
        chapters = list(
            session.scalars(select(Chapter).where(Chapter.job_id == job_id).order_by(Chapter.index))
        )
    assert job is not None
    mastering = Mastering.model_validate(job.mastering)
    parts = read_parts(farm, job_id)
    joined = not is_the_programme(mastering, len(chapters))  # else one file is the book
    titles = [c.title for c in chapters]
    layout = lay_out(parts, titles, farm.settings.audio, mastering, joined=joined)
    cover = farm.store.get_bytes(job.cover_key) if job.cover_key else None
    made: list[dict[str, Any]] = []
    cost = StitchCost()
    with tempfile.TemporaryDirectory(prefix="lyre-stitch-") as tmp:
        checks = [chapter.checks for chapter in chapters]
        with cost.total.counting():
            book = Book(job, chapters, parts, layout, mastering, cover)
            files = _encode_all(farm, lease, book, checks, Path(tmp), cost, joined)
            said: dict[str, dict[str, Any]] = {}  # more of a file, in its listing
            if mastering.read_along:
                m4b = next(path for _, f, path in files if f == "m4b")
                epub, coverage = make_read_along(farm, book, Path(tmp), m4b, joined)
                files.append(("read_along", "epub", epub))
                said["read_along"] = {"coverage": round(coverage, 4)}
        lease.renew()  # still ours: the files go where a later holder's would
        for kind, fmt, path in files:
            cost.stored += path.stat().st_size
            key = output_key(str(job_id), version, path.name)
            content_type = (
                ENCODINGS[fmt].content_type if fmt in ENCODINGS else outputs.CONTENT_TYPES[fmt]
            )
            farm.store.upload_file(key, path, content_type)
            made.append(
                {"kind": kind, "format": fmt, "key": key, "version": version, **said.get(kind, {})}
            )
    one = not joined
    for chapter, mark in zip(chapters, layout.marks, strict=False):
        made.append(
            {
                "kind": "chapter",
                "format": mastering.chapter_format,
                "key": made[0]["key"] if one else chapter.output_key,
                "version": chapter.version,
                "chapter": chapter.index + 1,
                "title": chapter.title,
                "start_s": round(mark.start / SAMPLE_RATE, 3),
            }
        )
    previous = {o["key"] for o in job.outputs}
    spent = {f"{name}_cpu": cost.params()[f"{name}_cpu"] for name in ("stitch", "encode")}
    with farm.sessions() as session:
        lease.release_in(session)
        done = move_job(
            session,
            job_id,
            JobStatus.SUCCEEDED,
            output_key=made[0]["key"],
            output_samples=layout.samples,
            outputs=made,
            stitch_lease_until=None,
            **{f"{name}_s": getattr(Job, f"{name}_s") + value for name, value in spent.items()},
            stored_bytes=Job.stored_bytes + cost.stored,
        )
        if one:  # the chapter's file is the programme
            session.execute(
                update(Chapter)
                .where(Chapter.job_id == job_id)
                .values(output_key=made[0]["key"], samples=layout.samples)
            )
        deliveries = [notify(farm, session, job_id, "job.succeeded")] if done else []
        if done and any(c.checks and c.checks["suspects"] for c in chapters):
            deliveries.append(notify(farm, session, job_id, REVIEW_EVENT))
    if done:
        old_segments = [
            segment_key(job_id, version, chapter.index, fmt)
            for chapter in chapters
            for version in range(1, chapter.version)
            for fmt in JOINED
        ]
        farm.store.delete_keys(sorted(previous - {o["key"] for o in made}) + old_segments)
    for delivery in filter(None, deliveries):
        farm.send.deliver(delivery)
    return done


def _encode_all(
    farm: FarmContext,
    lease: Lease,
    book: Book,
    checks: list[dict[str, Any] | None],
    folder: Path,
    cost: StitchCost,
    joined: bool,
) -> list[tuple[str, str, Path]]:
    """Every file of the book in ``folder``: (kind, format, path), the programme first.
    ``joined``: the MP3 and the M4B are joins of the chapters' segments (the programme in
    another format is encoded here, from the chunks); else the programme and the M4B are
    encoded here at the same time. ``checks``: each chapter's."""
    fmt, job, layout = book.mastering.format, book.job, book.layout
    files: list[tuple[str, str, Path]] = [("programme", fmt, folder / f"book.{fmt}")]
    if fmt != "m4b":
        files.append(("m4b", "m4b", folder / "book.m4b"))
    encode = partial(_encode_programme, farm, lease, job, book.parts, layout)
    bitrate, cover = book.mastering.bitrate_kbps, book.cover
    if joined:
        for _, f, path in files:
            if f not in JOINED or not join(farm, lease, book, f, path, cost):
                # a FLAC, WAV or Opus programme; or a chapter made before chapters had segments
                encode(f, bitrate, cover, path, cost)
    else:
        with ThreadPoolExecutor(1, "lyre-m4b") as pool:
            m4b = None
            if fmt != "m4b":
                m4b = pool.submit(
                    cost.total.counted(encode), "m4b", bitrate, cover, files[1][2], cost
                )
            encode(fmt, bitrate, cover, files[0][2], cost)
            if m4b is not None:
                m4b.result()
    cues = outputs.captions(book.parts, layout)
    for name, text in (
        ("captions.vtt", webvtt(cues)),
        ("captions.srt", srt(cues)),
        ("chapters.json", outputs.chapter_list(layout, book.parts, checks)),
    ):
        (folder / name).write_text(text, encoding="utf-8")
        files.append(
            (
                "captions" if name.startswith("captions") else "chapters",
                name.split(".")[1],
                folder / name,
            )
        )
    return files


def _encode_programme(
    farm: FarmContext,
    lease: Lease,
    job: Job,
    parts: list[Part],
    layout: Layout,
    fmt: str,
    bitrate: int,
    cover: bytes | None,
    path: Path,
    cost: StitchCost,
) -> int:
    """Write the programme in ``fmt``; return its samples. A long MP3 is encoded as two halves
    at once (LAME is the stitch's bottleneck and PyAV releases the GIL while it runs), joined at
    a seam inside a pause."""
    pauses = layout.pauses
    chapters = layout.marks  # where the format keeps them
    seam = mp3_seam(pauses, [p.stats.samples for p in parts]) if fmt == "mp3" else None
    tags = outputs.book_tags(job)
    writing = AudioWriter(path, fmt, bitrate, tags, chapters=chapters, cover=cover, cpu=cost.encode)
    with writing as writer:
        if seam is None:
            return join_chunks(
                chapter_stitch.stream_chunks(
                    farm, job.id, parts, pauses, layout, lease, cost.total
                ),
                1.0,
                writer,
            )
        k = seam.index
        second = path.with_name("second-half.mp3")
        with ThreadPoolExecutor(1, "lyre-stitch") as pool:
            later = pool.submit(
                cost.total.counted(_encode_half),
                farm,
                lease,
                job.id,
                parts[k:],
                [seam.tail, *pauses[k + 1 :]],
                layout,
                bitrate,
                second,
                cost,
            )
            first = chapter_stitch.stream_chunks(
                farm, job.id, parts[:k], pauses[:k], layout, lease, cost.total
            )
            samples = join_chunks(first, 1.0, writer)
            writer.write(np.zeros(seam.head, np.float32))
            samples += seam.head + later.result() + MP3_SEAM  # what the second encoder put ahead
        writer.append_encoded(second)
    return samples


def _encode_half(
    farm: FarmContext,
    lease: Lease,
    job_id: uuid.UUID,
    parts: list[Part],
    pauses: list[int],
    layout: Layout,
    bitrate: int,
    path: Path,
    cost: StitchCost,
) -> int:
    with AudioWriter(path, "mp3", bitrate, cpu=cost.encode) as writer:
        pieces = chapter_stitch.stream_chunks(
            farm, job_id, parts, pauses, layout, lease, cost.total
        )
        return join_chunks(pieces, 1.0, writer)
