"""The stitch stages on a 10-hour book of 20 chapters: peak memory and speed.

    python bench/stitch.py [--hours 10] [--format mp3] [--workers 2] [--read-along]

Builds a job whose chunks are all decoded (SQLite and a local object store, as embedded mode
uses), then runs the real stitch stages in child processes: every chapter's file and its
segments of the book's MP3 and M4B (``shared.farm.chapter_stitch.stitch_chapter``, each
chapter as its chunks are done), on ``--workers`` processes at once as that many stitch
workers would; then the book's files (``shared.farm.book_stitch.stitch_job``: the programme and
the M4B joined from the chapters' segments, the captions and the chapter list, "uploaded").
A child's peak RSS is what the stitch itself needs. To keep the disk small, the programme's
1200 chunk objects are links to twelve distinct 30-second recordings; every one is still read.

Targets: the whole (every chapter, then the book's files) at least 150x real time on this
machine's two cores, the book's files within 60 s of the last chapter, and 300 MB per process.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.audio.finish import finish_chunk
from shared.audio.presets import Mastering
from shared.farm.states import ChapterStatus, ChunkStatus, JobStatus
from shared.infra.db import bookkeeping_scope, migrate, session_scope
from shared.infra.models import Chapter, Chunk, Job, Tenant
from shared.infra.settings import get_settings
from shared.infra.storage import LocalStore, chunk_audio_key, put_pcm
from shared.text.chunking import Boundary

CHUNK_S = 30
DISTINCT = 12
CHAPTER_CHUNKS = 60  # 30 minutes
KINDS = [
    Boundary.SENTENCE,
    Boundary.SENTENCE,
    Boundary.PARAGRAPH,
    Boundary.SENTENCE,
    Boundary.SPEAKER,
    Boundary.CLAUSE,
]


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Noise shaped into syllables and pauses: speech's level, crest factor and gaps."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    envelope *= np.repeat(rng.uniform(0, 1, int(seconds) + 1) > 0.15, SAMPLE_RATE)[:n]
    return (0.2 * envelope * rng.standard_normal(n)).astype(np.float32)


def build_job(root: Path, hours: float, fmt: str, read_along: bool) -> tuple[str, uuid.UUID]:
    url = f"sqlite:///{root / 'lyre.db'}"
    migrate(url)
    store = LocalStore(root)
    job_id = uuid.uuid4()
    count = int(hours * 3600 / CHUNK_S)
    finished = [
        finish_chunk(speech_like(CHUNK_S, i), get_settings().audio) for i in range(DISTINCT)
    ]
    for i, (pcm, _) in enumerate(finished):
        put_pcm(store, f"distinct/{i}.f32", pcm)
    with session_scope(url) as session:
        tenant = Tenant(name="bench", webhook_secret="")
        session.add(tenant)
        session.flush()
        session.add(
            Job(
                id=job_id,
                tenant_id=tenant.id,
                status=JobStatus.RUNNING,
                voice="tara",
                format=fmt,
                mastering=Mastering(format=fmt, read_along=read_along).model_dump(),
                engine="bench",
                chunks_total=count,
                chunks_done=count,
                audio_samples=0,
                metadata_={},
                warnings={},
            )
        )
        session.flush()
        chapters = -(-count // CHAPTER_CHUNKS)
        session.add_all(
            Chapter(
                job_id=job_id,
                index=n,
                title=f"Chapter {n + 1}",
                status=ChapterStatus.WAITING,
                version=1,
            )
            for n in range(chapters)
        )
        session.flush()
        for index in range(count):
            pcm, stats = finished[index % DISTINCT]
            link = store.path(chunk_audio_key(str(job_id), index))
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(store.path(f"distinct/{index % DISTINCT}.f32"))
            session.add(
                Chunk(
                    job_id=job_id,
                    index=index,
                    status=ChunkStatus.DONE,
                    text="",
                    voice="tara",
                    boundary=(
                        Boundary.CHAPTER
                        if index and index % CHAPTER_CHUNKS == 0
                        else KINDS[index % len(KINDS)]
                    ).value,
                    chapter=index // CHAPTER_CHUNKS,
                    samples=stats.samples,
                    true_peak=stats.peak,
                    energy=stats.energy,
                    loudness_steps=stats.stored_steps(),
                )
            )
    return url, job_id


def farm_for(url: str, root: str):
    from shared.farm.context import FarmContext

    class Sent:  # the book's stitch is run by the bench once every chapter is made
        def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None:
            pass

    return FarmContext(
        get_settings(),
        LocalStore(Path(root)),
        Sent(),  # type: ignore[arg-type]
        partial(session_scope, url),
        partial(bookkeeping_scope, url),
    )


def run_chapters(url: str, job_id: str, root: str, first: int, step: int, count: int) -> None:
    """A child: the chapters ``first``, ``first + step``, ... one after another, as one stitch
    worker takes them."""
    from shared.farm.chapter_stitch import stitch_chapter

    farm = farm_for(url, root)
    for chapter in range(first, count, step):
        assert stitch_chapter(farm, uuid.UUID(job_id), chapter)


def run_book(url: str, job_id: str, root: str) -> None:
    """A child: the book's files."""
    from shared.farm.book_stitch import stitch_job

    assert stitch_job(farm_for(url, root), uuid.UUID(job_id))


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, "--child", *args], stderr=subprocess.PIPE, text=True
    )


def finished(children: list[subprocess.Popen[str]]) -> None:
    for process in children:
        _, err = process.communicate()
        if process.returncode:
            sys.exit(f"a stitch failed:\n{err[-5000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--workers", type=int, default=2, help="chapter stitches at once")
    parser.add_argument(
        "--read-along", action="store_true", help="the book's stitch makes a read-along EPUB too"
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, url, job_id, root, *more = args.child
        if kind == "chapters":
            run_chapters(url, job_id, root, *map(int, more))
        else:
            run_book(url, job_id, root)
        return
    count = int(args.hours * 3600 / CHUNK_S)
    chapters = -(-count // CHAPTER_CHUNKS)
    with tempfile.TemporaryDirectory(prefix="lyre-bench-") as tmp:
        url, job_id = build_job(Path(tmp), args.hours, args.format, args.read_along)
        common = (url, str(job_id), tmp)
        started = time.perf_counter()
        workers = range(args.workers)
        finished(
            [child("chapters", *common, str(w), str(args.workers), str(chapters)) for w in workers]
        )
        chapters_wall = time.perf_counter() - started
        started = time.perf_counter()
        finished([child("book", *common)])
        book_wall = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with session_scope(url) as session:
            job = session.get(Job, job_id)
            status, samples, made = job.status, job.output_samples or 0, job.outputs
            rows = session.query(Chapter).filter(Chapter.job_id == job_id).all()
            chapter_cpu = sum(r.stitch_cpu_s + r.encode_cpu_s for r in rows)
            chapter_encode = sum(r.encode_cpu_s for r in rows)
            book_cpu = job.stitch_cpu_s + job.encode_cpu_s - chapter_cpu
            book_encode = job.encode_cpu_s - chapter_encode
        sizes = {
            o["kind"]: os.path.getsize(Path(tmp) / o["key"]) for o in made if o["kind"] != "chapter"
        }
    audio = samples / SAMPLE_RATE
    wall = chapters_wall + book_wall
    print(
        f"{args.hours:g} h programme ({count} chunks, {chapters} chapters) -> {args.format}: "
        f"job {status}, {audio / 3600:.2f} h of audio, "
        f"{sizes.get('programme', 0) / 2**20:.0f} MiB, M4B {sizes.get('m4b', 0) / 2**20:.0f} MiB"
        + (f", EPUB {sizes['read_along'] / 2**20:.0f} MiB" if "read_along" in sizes else "")
    )
    print(
        f"every chapter's file and segments, {args.workers} at once: {chapters_wall:.1f} s = "
        f"{audio / chapters_wall:.0f} x real time; CPU {chapter_cpu:.1f} s "
        f"({chapter_encode:.1f} encoding)"
    )
    print(
        f"then the book's files (programme + M4B joined, captions, chapter list): "
        f"{book_wall:.1f} s (target 60); CPU {book_cpu:.1f} s ({book_encode:.1f} encoding)"
    )
    print(
        f"in all {wall:.1f} s = {audio / wall:.0f} x real time (target 150); peak RSS of a "
        f"stitch process {peak_mb:.0f} MB (target 300); about "
        f"{(chapter_cpu + book_cpu) / 3600:.3f} core-hours"
    )


if __name__ == "__main__":
    main()
