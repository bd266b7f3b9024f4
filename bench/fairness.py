"""Fair, prioritised dispatch, measured on the native farm with the simulated GPU.

    python bench/fairness.py [--book-chunks 2000] [--window-s 10] [--share-s 60]

Starts the farm as ``make farm-up`` does (api, dispatcher, a gpu worker with 72 threads, cpu,
stitch and webhook workers, beat, Flower; moto's S3; local Postgres) with its own Redis server,
so that it can restart it, and ``LYRE_ENGINE=simulated``: a continuous-batching engine of 64
sequences at 12 ms a step (``shared/speech/simulated.py``), each chunk one paragraph of about
100 characters (550 tokens, 6.6 s in the batch). Every scenario starts from an idle farm and
cancels what it leaves behind:

(a) a 3-chunk job of tenant B alone, three times; then a 2,000-chunk book of tenant A and, a
    second later, the same 3-chunk job of B: B's time from submission to its audio, against
    alone. Target: at most 2x alone plus one chunk's time in the batch.
(b) two 2,000-chunk books of two tenants, submitted at once: each tenant's share of the tokens
    the engine generated (read from the gpu worker's log) in every 10-second window of the
    first minute. Target: 40-60 %.
(c) a 20-chapter book (20 chunks a chapter): time to its first finished chapter, against the
    time to the whole book; and one such chapter as a job alone. Target: first chapter at
    most a tenth of the book's time plus one chapter's.
(d) a 1,000-chunk book, Redis killed and restarted empty mid-run: the time from Redis
    answering again until a gpu worker takes a chunk again. Target: at most twice the
    dispatcher's period.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from sqlalchemy import func, select, text

from shared.farm.tenants import create_key
from shared.infra.db import dispose_engines, session_scope
from shared.infra.models import Chunk
from shared.speech.simulated import TRACE
from workers import farm_processes
from workers.bootstrap import ensure_database

DB = "postgresql+psycopg://postgres@127.0.0.1:5432/lyre_bench_fairness"
EVERY_S = 1.0  # the dispatcher's period (its default)
WORDS = "the keeper climbed the steps and trimmed the wick before the storm came in".split()


def paragraphs(n: int, tag: str) -> str:
    """``n`` paragraphs of about 100 characters, one chunk each."""
    return "\n\n".join(
        f"{tag} {i:05d}: " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(16)) + "."
        for i in range(n)
    )


def book(chapters: int, per_chapter: int) -> str:
    return "\n\n".join(
        f"# Chapter {c + 1}\n\n" + paragraphs(per_chapter, f"Chapter {c + 1} part")
        for c in range(chapters)
    )


@dataclass
class Farm:
    api: str
    state: Path
    redis_port: int
    env: dict[str, str]
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_redis(self) -> None:
        argv = ["redis-server", "--port", str(self.redis_port), "--save", "", "--appendonly", "no"]
        self.children["redis"] = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.redis_port)
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM to every process's group at once, then wait for each."""
        for child in self.children.values():
            try:
                os.killpg(child.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                child.terminate()
        for child in self.children.values():
            child.wait(timeout=60)

    def key(self, tenant: str) -> dict[str, str]:
        with session_scope(DB) as session:
            _, key = create_key(session, tenant)
        return {"Authorization": f"Bearer {key}"}

    def submit(self, auth: dict[str, str], body: str, **fields) -> tuple[str, float]:
        """The job's id, and when it was submitted (time.time)."""
        at = time.time()
        response = httpx.post(
            f"{self.api}/v1/jobs", json={"text": body, **fields}, headers=auth, timeout=120
        )
        response.raise_for_status()
        return response.json()["id"], at

    def job(self, auth: dict[str, str], job_id: str) -> dict:
        return httpx.get(f"{self.api}/v1/jobs/{job_id}", headers=auth, timeout=30).json()

    def wait(self, auth: dict[str, str], job_id: str, until, poll_s: float = 0.1) -> float:
        """Poll until ``until(job)``; the time.time it first held."""
        while True:
            job = self.job(auth, job_id)
            if until(job):
                return time.time()
            if job["status"] in ("failed", "cancelled"):
                raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
            time.sleep(poll_s)

    def cancel(self, *jobs: tuple[dict[str, str], str]) -> None:
        """Cancel each (auth, job id), then wait for an idle farm."""
        for auth, job_id in jobs:
            response = httpx.post(f"{self.api}/v1/jobs/{job_id}/cancel", headers=auth, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"cancel {job_id}: {response.status_code} {response.text}")
        self.drain()

    def drain(self) -> None:
        """Until no job is active (none waits for the GPU, a decode or a stitch) and the
        engine's last chunks are out: an idle farm."""
        time.sleep(1)
        while True:
            with session_scope(DB) as session:
                active = session.scalar(
                    text("SELECT count(*) FROM job WHERE status IN ('queued', 'running')")
                )
            last = max((end for *_, end, _ in self.trace()), default=0.0)
            if not active and time.time() - last > 8:
                return
            time.sleep(1)

    def trace(self) -> list[tuple[str, int, float, float, int]]:
        """Every chunk the engine finished (a retake once more): (job, index, entered, left,
        tokens)."""
        log = (self.state / "gpu-worker.log").read_text(errors="replace")
        found = []
        for request, start, end, tokens in TRACE.findall(log):
            job_id, index = request.split(".")[0].rsplit("-", 1)  # "<job>-<index>[.<take>]"
            found.append((job_id, int(index), float(start), float(end), int(tokens)))
        return found


def start(tmp: Path, extra_env: dict[str, str] | None = None) -> Farm:
    api_port, flower_port, s3_port, redis_port = (farm_processes.free_port() for _ in range(4))
    env = {
        **os.environ,
        "LYRE_DATABASE__URL": DB,
        "LYRE_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
        "LYRE_ENGINE": "simulated",
        "LYRE_ORPHEUS__MAX_NUM_SEQS": "64",
        "LYRE_STORAGE__ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "LYRE_STORAGE__ACCESS_KEY_ID": "bench",
        "LYRE_STORAGE__SECRET_ACCESS_KEY": "bench",
        "LYRE_STORAGE__BUCKET": "lyre-bench",
        "LYRE_FLOWER__PORT": str(flower_port),
        "OMP_NUM_THREADS": "1",
        **(extra_env or {}),
    }
    farm = Farm(f"http://127.0.0.1:{api_port}", tmp, redis_port, env)
    farm.start_redis()
    specs = farm_processes.processes(
        api_port, s3_port, flower_port, gpu_concurrency=72, state_dir=tmp
    )
    s3, rest = specs[0], specs[1:]
    farm.children[s3.name] = farm_processes.start(s3, env, tmp)
    farm_processes.wait_healthy(s3, farm.children[s3.name])
    farm_processes.prepare(env)
    with session_scope(DB) as session:
        session.execute(text("TRUNCATE tenant, job, webhook_delivery, gpu_worker CASCADE"))
    for spec in rest:
        farm.children[spec.name] = farm_processes.start(spec, env, tmp)
        farm_processes.wait_healthy(spec, farm.children[spec.name])
    time.sleep(5)  # the gpu worker's engine and heartbeat
    return farm


# --- the scenarios ----------------------------------------------------------------------------


def short_job(farm: Farm, book_chunks: int) -> None:
    b, a = farm.key("b"), farm.key("a")
    page = paragraphs(3, "Page")
    alone = []
    for _ in range(3):
        job_id, at = farm.submit(b, page)
        alone.append(farm.wait(b, job_id, lambda j: j["status"] == "succeeded") - at)
    book_id, _ = farm.submit(a, paragraphs(book_chunks, "Book"))
    time.sleep(1)
    job_id, at = farm.submit(b, page)
    behind = farm.wait(b, job_id, lambda j: j["status"] == "succeeded") - at
    farm.cancel((a, book_id))
    chunk_s = statistics.median(end - start for j, _, start, end, _ in farm.trace() if j == book_id)
    target = 2 * statistics.median(alone) + chunk_s
    print(
        f"(a) a 3-chunk job alone: {', '.join(f'{s:.2f}' for s in alone)} s (median "
        f"{statistics.median(alone):.2f} s); behind a {book_chunks}-chunk book: {behind:.2f} s; "
        f"one chunk in the batch: {chunk_s:.2f} s; target <= {target:.2f} s: "
        f"{'met' if behind <= target else 'NOT met'}",
        flush=True,
    )


def two_books(farm: Farm, book_chunks: int, window_s: float, share_s: float) -> None:
    auths = {"c": farm.key("c"), "d": farm.key("d")}
    jobs: dict[str, str] = {}
    ready = threading.Barrier(2)

    def submit(tenant: str) -> None:
        body = paragraphs(book_chunks, f"Book of {tenant}")
        ready.wait()
        jobs[tenant] = farm.submit(auths[tenant], body)[0]

    threads = [threading.Thread(target=submit, args=(t,)) for t in auths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(share_s + 15)  # the last window's chunks leave the batch
    farm.cancel(*((auths[tenant], job_id) for tenant, job_id in jobs.items()))
    owner = {job_id: tenant for tenant, job_id in jobs.items()}
    spans = [(owner[j], s, e, n) for j, _, s, e, n in farm.trace() if j in owner]
    t0 = min(s for _, s, _, _ in spans)
    shares, worst = [], 0.0
    for w in range(int(share_s // window_s)):
        lo, hi = t0 + w * window_s, t0 + (w + 1) * window_s
        tokens: dict[str, float] = defaultdict(float)
        for tenant, s, e, n in spans:  # one token a step while in the batch: spread evenly
            overlap = min(e, hi) - max(s, lo)
            if overlap > 0:
                tokens[tenant] += n * overlap / (e - s)
        share = tokens["c"] / (tokens["c"] + tokens["d"])
        shares.append(share)
        worst = max(worst, abs(share - 0.5))
    listed = ", ".join(f"{s:.1%}" for s in shares)
    print(
        f"(b) two {book_chunks}-chunk books of two tenants at once: tenant c's share of the "
        f"tokens in each {window_s:.0f} s window: {listed}; target 40-60 %: "
        f"{'met' if worst <= 0.1 else 'NOT met'}",
        flush=True,
    )


def first_chapter(farm: Farm) -> None:
    e = farm.key("e")
    one_id, at = farm.submit(e, book(1, 20))
    one = farm.wait(e, one_id, lambda j: j["status"] == "succeeded") - at
    farm.drain()
    book_id, at = farm.submit(e, book(20, 20))
    first = farm.wait(e, book_id, lambda j: any(c["status"] == "done" for c in j["chapters"]))
    done = farm.wait(e, book_id, lambda j: j["status"] == "succeeded", poll_s=0.5)
    first, whole = first - at, done - at
    target = whole / 10 + one
    print(
        f"(c) a 20-chapter book (420 chunks): first chapter done at {first:.1f} s, the whole "
        f"book at {whole:.1f} s; one chapter alone {one:.1f} s; target <= {target:.1f} s: "
        f"{'met' if first <= target else 'NOT met'}",
        flush=True,
    )


def redis_restart(farm: Farm) -> None:
    f = farm.key("f")
    book_id, _ = farm.submit(f, paragraphs(1000, "Long"))
    time.sleep(15)
    farm.children["redis"].kill()
    farm.children["redis"].wait()
    farm.start_redis()  # empty: nothing was saved
    back = time.time()
    taken_since = select(func.min(Chunk.taken_at)).where(
        Chunk.job_id == uuid.UUID(book_id), func.extract("epoch", Chunk.taken_at) > back
    )
    resumed = None
    deadline = time.monotonic() + 120
    while resumed is None and time.monotonic() < deadline:
        with session_scope(DB) as session:
            resumed = session.scalar(taken_since)
        time.sleep(0.05)
    assert resumed is not None, "no chunk was taken in two minutes after Redis came back"
    wait = resumed.timestamp() - back
    farm.cancel((f, book_id))
    print(
        f"(d) Redis killed and restarted empty mid-book: a gpu worker took a chunk again "
        f"{wait:.2f} s after Redis answered; target <= {2 * EVERY_S:.1f} s (twice the "
        f"dispatcher's period): {'met' if wait <= 2 * EVERY_S else 'NOT met'}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-chunks", type=int, default=2000)
    parser.add_argument("--window-s", type=float, default=10.0)
    parser.add_argument("--share-s", type=float, default=60.0, help="how long (b) is measured")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append")
    parser.add_argument("--logs", type=Path, help="keep the farm's logs in this folder")
    args = parser.parse_args()
    ensure_database(DB)
    with tempfile.TemporaryDirectory(prefix="lyre-bench-fairness-") as tmp:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            tmp = str(args.logs)
        farm = None
        try:
            farm = start(Path(tmp))
            print(
                "simulated engine: 64 sequences, 12 ms a step; gpu worker 72 threads; "
                f"dispatcher every {EVERY_S:.0f} s, window 1.25 per slot"
            )
            scenarios = {
                "a": lambda: short_job(farm, args.book_chunks),
                "b": lambda: two_books(farm, args.book_chunks, args.window_s, args.share_s),
                "c": lambda: first_chapter(farm),
                "d": lambda: redis_restart(farm),
            }
            for name in args.only or scenarios:
                scenarios[name]()
        finally:
            if farm is not None:
                farm.stop()
            dispose_engines()


if __name__ == "__main__":
    main()
