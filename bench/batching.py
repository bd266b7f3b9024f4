"""Does the GPU worker keep a continuous-batching engine full?

    python bench/batching.py [--chunks 500] [--max-num-seqs 64] [--concurrency 72]

A simulated engine stands in for vLLM (this benchmark only): each step costs a fixed time for
any batch up to ``max_num_seqs`` and gives one token to every running sequence. A backlog of
chunks goes through the GPU stage the Celery task runs (``shared.farm.stages.generate_chunk``:
claim in Postgres, generate on the shared engine loop, store the codes, hand on to decode) from a
pool of ``--concurrency`` threads, as ``celery worker --pool threads`` runs it. Prints the mean
number of sequences in flight and the tokens per second as a fraction of the engine's capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

from shared.audio.presets import Mastering
from shared.farm import stages
from shared.farm.context import Farm
from shared.farm.jobs import JobRequest, new_job, submit_job
from shared.infra.db import bookkeeping_scope, dispose_engines, migrate, session_scope
from shared.infra.models import Tenant
from shared.infra.settings import get_settings
from shared.infra.storage import LocalStore
from shared.speech.codec import FRAME_TOKENS, codes_from_frames
from shared.speech.engine import Engine, EngineLoop, Speech, SpeechRequest
from shared.text.chunking import chunk_text
from shared.text.voices import VOICES
from workers.bootstrap import ensure_database

BENCH_DB = "postgresql+psycopg://postgres@127.0.0.1:5432/lyre_bench"


class SimulatedBatchEngine(Engine):
    """Continuous batching in miniature: admit up to max_num_seqs, one token each per step."""

    name, voices = "simulated", VOICES

    def __init__(self, max_num_seqs: int, step_s: float, tokens_per_char: float) -> None:
        self.max_num_seqs, self.step_s, self.tokens_per_char = max_num_seqs, step_s, tokens_per_char
        self.waiting: list[list] = []  # [tokens left, tokens total, future]
        self.running: list[list] = []
        self.in_flight: list[int] = []  # batch size at every step
        self.backlogged: list[bool] = []  # whether chunks were still waiting to start then
        self.tokens = 0
        self.requests = 0
        self.expected = 0  # chunks in the backlog
        self._stepper: asyncio.Task | None = None

    async def generate(self, request: SpeechRequest) -> Speech:
        need = max(FRAME_TOKENS, round(len(request.text) * self.tokens_per_char / 7) * 7)
        self.requests += 1
        future = asyncio.get_running_loop().create_future()
        self.waiting.append([need, need, future])
        if self._stepper is None or self._stepper.done():
            self._stepper = asyncio.create_task(self._run())
        need = await future
        frames = np.zeros((need // FRAME_TOKENS, FRAME_TOKENS), dtype=np.int64)
        return Speech(codes=codes_from_frames(frames.tolist()), tokens=need)

    async def _run(self) -> None:
        while self.waiting or self.running:
            free = self.max_num_seqs - len(self.running)
            self.running += self.waiting[:free]
            del self.waiting[:free]
            await asyncio.sleep(self.step_s)  # one forward pass, whatever the batch size
            self.in_flight.append(len(self.running))
            self.backlogged.append(self.requests < self.expected)
            self.tokens += len(self.running)
            for seq in self.running:
                seq[0] -= 1
            for seq in [s for s in self.running if s[0] <= 0]:
                self.running.remove(seq)
                seq[2].set_result(seq[1])


class CountingSender:
    """Keeps the generate messages, in the order the farm sends them, and counts decodes."""

    def __init__(self) -> None:
        self.generates: list[int] = []
        self.decodes = 0

    def decode(self, job_id: uuid.UUID, index: int) -> None:
        self.decodes += 1

    def generate(self, job_id: uuid.UUID, index: int) -> None:
        self.generates.append(index)

    def stitch(self, job_id: uuid.UUID) -> None: ...
    def deliver(self, delivery_id: str, delay_s: float = 0) -> None: ...


def backlog_text(chunks: int) -> str:
    """Paragraphs of 75 to 450 characters: 5 to 30 s of speech each, one chunk apiece."""
    rng = np.random.default_rng(0)
    words = "the keeper climbed the steps and trimmed the wick before the storm came in".split()
    return "\n\n".join(
        " ".join(rng.choice(words, size=int(n))) + "." for n in rng.integers(14, 80, size=chunks)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=72)
    parser.add_argument("--step-ms", type=float, default=12.0)  # ≈ one batch-64 step of a 3B model
    parser.add_argument("--tokens-per-char", type=float, default=5.5)
    args = parser.parse_args()
    ensure_database(BENCH_DB)
    migrate(BENCH_DB)
    sessions = partial(session_scope, BENCH_DB)
    engine = SimulatedBatchEngine(args.max_num_seqs, args.step_ms / 1000, args.tokens_per_char)
    loop, sender = EngineLoop(), CountingSender()
    with tempfile.TemporaryDirectory(prefix="lyre-bench-") as tmp:
        farm = Farm(
            get_settings(),
            LocalStore(Path(tmp)),
            sender,
            sessions,
            partial(bookkeeping_scope, BENCH_DB),
        )
        chunked = chunk_text(backlog_text(args.chunks), max_chars=450)
        with sessions() as session:
            tenant = Tenant(name=f"bench-{uuid.uuid4().hex[:8]}", webhook_secret="")
            session.add(tenant)
        request = JobRequest(voice="tara", engine="simulated", mastering=Mastering())
        job, rows, chapters = new_job(uuid.uuid4(), tenant.id, chunked, request, farm.lease())
        submit_job(farm, job, rows, chapters)  # the generate messages, as the api sends them
        engine.expected = len(chunked.spans)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(
                pool.map(
                    lambda index: stages.generate_chunk(farm, loop, engine, job.id, index),
                    sender.generates,
                )
            )
        wall = time.perf_counter() - started
    loop.close()
    dispose_engines()
    capacity = args.max_num_seqs / (args.step_ms / 1000)
    busy = engine.in_flight
    print(
        f"{len(chunked.spans)} chunks, {engine.tokens} tokens, max_num_seqs "
        f"{args.max_num_seqs}, {args.concurrency} worker threads, step {args.step_ms} ms"
    )
    print(
        f"mean sequences in flight {np.mean(busy):.1f} of {args.max_num_seqs} "
        f"({np.mean(busy) / args.max_num_seqs:.1%})"
    )
    steady = [n for n, b in zip(busy, engine.backlogged, strict=True) if b]
    print(
        f"while a backlog remained ({len(steady)} of {len(busy)} steps): "
        f"{np.mean(steady):.1f} in flight ({np.mean(steady) / args.max_num_seqs:.1%})"
    )
    print(
        f"tokens per second {engine.tokens / wall:.0f} of {capacity:.0f} capacity "
        f"({engine.tokens / wall / capacity:.1%}); wall {wall:.1f} s; "
        f"{sender.decodes} chunks handed to decode"
    )


if __name__ == "__main__":
    main()
