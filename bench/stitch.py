"""The stitch stages on a 10-hour book of 20 chapters: peak memory and speed.

    python bench/stitch.py [--hours 10] [--format mp3]

Builds a job whose chunks are all decoded (SQLite and a local object store, as embedded mode
uses), then runs the real stitch stages in a child process: one chapter's file
(``shared.farm.chapter_stitch.stitch_chapter``, the first 30-minute chapter, as each chapter is made
when its chunks are done), then the book's files (``shared.farm.book_stitch.stitch_job``: the
programme and the M4B encoded at once from every chunk object in order, the captions and the
chapter list, "uploaded"). The child's peak RSS is what the stitch itself needs. To keep the
disk small, the programme's 1200 chunk objects are links to twelve distinct 30-second
recordings; every one is still read.
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


def build_job(root: Path, hours: float, fmt: str) -> tuple[str, uuid.UUID]:
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
                mastering=Mastering(format=fmt).model_dump(),
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
                status=ChapterStatus.WAITING if n == 0 else ChapterStatus.DONE,
                version=1,
                output_key=None if n == 0 else f"jobs/{job_id}/v1/chapter-{n + 1:03d}.mp3",
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


def run_stitch(url: str, job_id: str, root: str) -> None:
    """The child: only the stitch stage runs here, so its peak RSS is the stitch's own."""
    from shared.farm.book_stitch import stitch_job
    from shared.farm.chapter_stitch import stitch_chapter
    from shared.farm.context import FarmContext

    class Sent:  # the chapter's stitch sends nothing here: the other chapters are made
        def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None:
            pass

    farm = FarmContext(
        get_settings(),
        LocalStore(Path(root)),
        Sent(),  # type: ignore[arg-type]
        partial(session_scope, url),
        partial(bookkeeping_scope, url),
    )
    started = time.perf_counter()
    assert stitch_chapter(farm, uuid.UUID(job_id), 0)
    chapter = time.perf_counter() - started
    started = time.perf_counter()
    assert stitch_job(farm, uuid.UUID(job_id))
    print(f"{chapter:.3f} {time.perf_counter() - started:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--format", default="mp3")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_stitch(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="lyre-bench-") as tmp:
        url, job_id = build_job(Path(tmp), args.hours, args.format)
        child = subprocess.run(
            [sys.executable, __file__, "--child", url, str(job_id), tmp],
            capture_output=True,
            text=True,
        )
        if child.returncode:
            sys.exit(f"the stitch failed:\n{child.stderr[-5000:]}")
        chapter_wall, wall = map(float, child.stdout.strip().splitlines()[-1].split())
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with session_scope(url) as session:
            job = session.get(Job, job_id)
            status, samples, made = job.status, job.output_samples or 0, job.outputs
            first = session.get(Chapter, (job_id, 0))
            chapter_samples = first.samples if first else 0
            chapter_cpu = (first.stitch_cpu_s, first.encode_cpu_s) if first else (0.0, 0.0)
            book_cpu = (job.stitch_cpu_s - chapter_cpu[0], job.encode_cpu_s - chapter_cpu[1])
        sizes = {
            o["kind"]: os.path.getsize(Path(tmp) / o["key"]) for o in made if o["kind"] != "chapter"
        }
    audio = samples / SAMPLE_RATE
    print(
        f"{args.hours:g} h programme ({int(args.hours * 3600 / CHUNK_S)} chunks) -> "
        f"{args.format}: job {status}, {audio / 3600:.2f} h of audio, "
        f"{sizes.get('programme', 0) / 2**20:.0f} MiB, M4B {sizes.get('m4b', 0) / 2**20:.0f} MiB"
    )
    print(
        f"one chapter ({chapter_samples / SAMPLE_RATE / 60:.0f} min): {chapter_wall:.1f} s = "
        f"{chapter_samples / SAMPLE_RATE / chapter_wall:.0f} x real time"
    )
    print(
        f"the book's files (programme + M4B at once, captions, chapter list): {wall:.1f} s = "
        f"{audio / wall:.0f} x real time; peak RSS of the stitch process {peak_mb:.0f} MB"
    )
    chapters = -(-int(args.hours * 3600 / CHUNK_S) // CHAPTER_CHUNKS)
    print(
        f"CPU, as the job's costs say (stitch + encode): one chapter {sum(chapter_cpu):.1f} s "
        f"({chapter_cpu[1]:.1f} encoding), the book's files {sum(book_cpu):.1f} s "
        f"({book_cpu[1]:.1f} encoding); all {chapters} chapters and the book's files about "
        f"{(chapters * sum(chapter_cpu) + sum(book_cpu)) / 3600:.2f} core-hours"
    )


if __name__ == "__main__":
    main()
