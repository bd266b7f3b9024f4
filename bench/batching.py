"""Does the dispatcher keep a continuous-batching engine full?

    python bench/batching.py [--chunks 500] [--max-num-seqs 64] [--concurrency 72]
                             [--window-per-slot 1.25] [--every-s 1.0]

The simulated engine (``shared/speech/simulated.py``: each step costs a fixed time for any
batch up to ``max_num_seqs`` and gives one token to every running chunk) stands in for vLLM.
A backlog of chunks waits in Postgres. The dispatcher's tick (``shared.farm.dispatch``, every
``--every-s`` as ``workers.dispatcher`` runs it) puts a window of them on an in-process queue
that stands for the gpu queue, sized from the worker's ``--concurrency`` as its heartbeat
would size it; ``--concurrency`` threads take chunks from that queue and run the GPU stage
the Celery task runs (``shared.farm.stages.generate_chunk``: claim in Postgres, generate on the
shared engine loop, store the output, hand on to decode), as ``celery worker --pool threads``
does. Prints the mean number of chunks in flight while a backlog remained, and tokens per
second as a fraction of the engine's capacity.
"""

from __future__ import annotations

import argparse
import queue
import tempfile
import threading
import time
import uuid
from functools import partial
from pathlib import Path

import numpy as np

from shared.audio.presets import Mastering
from shared.farm import stages
from shared.farm.context import FarmContext
from shared.farm.dispatch import dispatch
from shared.farm.jobs import JobRequest, new_job, submit_job
from shared.infra.db import bookkeeping_scope, dispose_engines, migrate, session_scope
from shared.infra.models import Tenant
from shared.infra.settings import get_settings
from shared.infra.storage import LocalStore
from shared.speech.engine import EngineLoop
from shared.speech.simulated import SimulatedEngine
from shared.text.chunking import chunk_text
from workers.bootstrap import ensure_database

BENCH_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/lyre_bench"


class QueueSender:
    """The gpu queue as an in-process queue; decodes are only counted."""

    def __init__(self) -> None:
        self.gpu: queue.Queue = queue.Queue()
        self.decodes = 0

    def generate(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        self.gpu.put((job_id, index, urgent))

    def decode(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        self.decodes += 1

    def stitch_chapter(self, job_id: uuid.UUID, chapter: int, urgent: bool = False) -> None: ...
    def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None: ...
    def deliver(self, delivery_id: str, delay_s: float = 0) -> None: ...

    def window_lost(self) -> bool:
        return False


def backlog_text(chunks: int) -> str:
    """Paragraphs of 75 to 450 characters: 5 to 30 s of speech each, one chunk apiece."""
    rng = np.random.default_rng(0)
    words = "the keeper climbed the steps and trimmed the wick before the storm came in".split()
    return "\n\n".join(
        " ".join(rng.choice(words, size=int(n))) + "." for n in rng.integers(14, 80, size=chunks)
    )


def run(args: argparse.Namespace, farm: FarmContext, sender: QueueSender, total: int) -> float:
    """Dispatcher and worker threads until every chunk is generated; the wall time."""
    settings = get_settings()
    engine = SimulatedEngine(args.max_num_seqs, args.step_ms / 1000, args.tokens_per_char)
    loop, done = EngineLoop(), threading.Event()
    generated = [0]
    lock = threading.Lock()

    def worker() -> None:
        while not done.is_set():
            try:
                job_id, index, urgent = sender.gpu.get(timeout=0.1)
            except queue.Empty:
                continue
            stages.generate_chunk(farm, loop, engine, job_id, index, urgent)
            with lock:
                generated[0] += 1
                if generated[0] == total:
                    done.set()

    def dispatcher() -> None:
        while not done.is_set():
            dispatch(farm, slots=args.concurrency)
            done.wait(settings.dispatch.every_s)

    threads = [threading.Thread(target=worker) for _ in range(args.concurrency)]
    threads.append(threading.Thread(target=dispatcher))
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    loop.close()
    report(args, engine, sender, total, wall)
    return wall


def report(
    args: argparse.Namespace, engine: SimulatedEngine, sender: QueueSender, total: int, wall: float
) -> None:
    capacity = args.max_num_seqs / (args.step_ms / 1000)
    busy = engine.in_flight
    print(
        f"{total} chunks, {engine.tokens} tokens, max_num_seqs {args.max_num_seqs}, "
        f"{args.concurrency} worker threads, step {args.step_ms} ms, window "
        f"{args.window_per_slot} per slot, dispatcher every {args.every_s} s"
    )
    print(
        f"mean sequences in flight {np.mean(busy):.1f} of {args.max_num_seqs} "
        f"({np.mean(busy) / args.max_num_seqs:.1%})"
    )
    steady = [n for n, seen in zip(busy, engine.seen, strict=True) if seen < total]
    print(
        f"while a backlog remained ({len(steady)} of {len(busy)} steps): "
        f"{np.mean(steady):.1f} in flight ({np.mean(steady) / args.max_num_seqs:.1%})"
    )
    print(
        f"tokens per second {engine.tokens / wall:.0f} of {capacity:.0f} capacity "
        f"({engine.tokens / wall / capacity:.1%}); wall {wall:.1f} s; "
        f"{sender.decodes} chunks handed to decode"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=72)
    parser.add_argument("--step-ms", type=float, default=12.0)  # ≈ one batch-64 step of a 3B model
    parser.add_argument("--tokens-per-char", type=float, default=5.5)
    parser.add_argument("--window-per-slot", type=float, default=None)
    parser.add_argument("--every-s", type=float, default=None)
    args = parser.parse_args()
    base = get_settings()
    dispatching = base.dispatch.model_copy(
        update={
            "window_per_slot": args.window_per_slot or base.dispatch.window_per_slot,
            "every_s": args.every_s or base.dispatch.every_s,
        }
    )
    args.window_per_slot, args.every_s = dispatching.window_per_slot, dispatching.every_s
    settings = base.model_copy(update={"dispatch": dispatching})
    get_settings.cache_clear()
    ensure_database(BENCH_DB)
    migrate(BENCH_DB)
    sessions = partial(session_scope, BENCH_DB)
    sender = QueueSender()
    with tempfile.TemporaryDirectory(prefix="lyre-bench-") as tmp:
        farm = FarmContext(
            settings, LocalStore(Path(tmp)), sender, sessions, partial(bookkeeping_scope, BENCH_DB)
        )
        chunked = chunk_text(backlog_text(args.chunks), max_chars=450)
        with sessions() as session:
            tenant = Tenant(name=f"bench-{uuid.uuid4().hex[:8]}", webhook_secret="")
            session.add(tenant)
        request = JobRequest(voice="tara", engine="simulated", mastering=Mastering())
        job, rows, chapters = new_job(uuid.uuid4(), tenant.id, chunked, request)
        submit_job(farm, job, rows, chapters)  # waiting in Postgres for the dispatcher
        run(args, farm, sender, len(rows))
    dispose_engines()


if __name__ == "__main__":
    main()
