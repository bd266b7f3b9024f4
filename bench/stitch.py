"""The stitch stage on a 10-hour programme: peak memory and speed.

    python bench/stitch.py [--hours 10] [--format mp3]

Builds a job whose chunks are all decoded (SQLite and a local object store, as embedded mode
uses), then runs the real stitch stage (``shared.farm.stitching.stitch_job``) in a child process: it
streams every chunk object in order, applies pauses and one gain, encodes and "uploads". The
child's peak RSS is what the stitch itself needs. To keep the disk small, the programme's 1200
chunk objects are links to twelve distinct 30-second recordings; every one is still read.
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
from shared.farm.states import ChunkStatus, JobStatus
from shared.infra.db import bookkeeping_scope, migrate, session_scope
from shared.infra.models import Chunk, Job, Tenant
from shared.infra.settings import get_settings
from shared.infra.storage import LocalStore, chunk_audio_key, put_pcm
from shared.text.chunking import Boundary

CHUNK_S = 30
DISTINCT = 12
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
                engine="bench",
                chunks_total=count,
                chunks_done=count,
                audio_samples=0,
                metadata_={},
                warnings={},
            )
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
                    boundary=KINDS[index % len(KINDS)].value,
                    chapter=0,
                    samples=stats.samples,
                    true_peak=stats.peak,
                    loudness_steps=stats.steps.astype("<f8").tobytes(),
                )
            )
    return url, job_id


def run_stitch(url: str, job_id: str, root: str) -> None:
    """The child: only the stitch stage runs here, so its peak RSS is the stitch's own."""
    from shared.farm.context import Farm
    from shared.farm.stitching import stitch_job

    farm = Farm(
        get_settings(),
        LocalStore(Path(root)),
        None,  # type: ignore[arg-type]
        partial(session_scope, url),
        partial(bookkeeping_scope, url),
    )
    started = time.perf_counter()
    stitch_job(farm, uuid.UUID(job_id))
    print(f"{time.perf_counter() - started:.3f}")


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
            check=True,
        )
        wall = float(child.stdout.strip().splitlines()[-1])
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with session_scope(url) as session:
            job = session.get(Job, job_id)
            status, samples, key = job.status, job.output_samples or 0, job.output_key
        size = os.path.getsize(Path(tmp) / key) if key else 0
    audio = samples / SAMPLE_RATE
    print(
        f"{args.hours:g} h programme ({int(args.hours * 3600 / CHUNK_S)} chunks) -> "
        f"{args.format}: job {status}, {audio / 3600:.2f} h of audio, {size / 2**20:.0f} MiB"
    )
    print(
        f"stitch wall time {wall:.1f} s = {audio / wall:.0f} x real time; "
        f"peak RSS of the stitch process {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
