"""Polls of one job through the API (``GET /v1/jobs/{id}``) against a minimal FastAPI + psycopg
endpoint that reads the same row, in one run on this machine.

    python bench/api.py [--clients 16] [--seconds 10] [--warmup-s 2] [--runs 3] [--succeeded]
                        [--pin] [--loaders 1]
    python bench/api.py --streams 8 [--seconds 10] [--runs 3]
    python bench/api.py --book-hours 10 [--clients 16] [--seconds 10] [--runs 3]

Starts, as ``make farm-up`` starts them, moto's S3 server and one api process (uvicorn, no
workers: the job stays queued) against a fresh migrated database of its own and a Redis key
prefix of its own; and ``bench/poll_baseline.py`` in one uvicorn process, whose two routes
read the job's row with one SELECT: from a ``def`` route in Starlette's thread pool as most of
Lyre's routes are ("sync"), and from an ``async def`` route on the event loop, as Lyre's poll
is ("async"). Makes a
tenant and its key (a limit of a million requests a second, so that every poll is counted in
Redis and none is refused) and submits a book of five chapters (45 chunks) through the API;
``--succeeded`` marks it succeeded with the files a book has instead (15 download URLs
presigned at each poll).

Each target is then driven by the same load generator (``bench/load.py``: ``--clients``
keep-alive connections in ``--loaders`` processes of their own, each sending its next request
as soon as it has its answer) for ``--warmup-s`` and then ``--seconds`` measured; the targets
take turns, ``--runs`` times, so that the machine's other load falls on each alike. Prints
each run's polls a second, p50 and p99 latency, the server process's CPU per poll (from
/proc) and the Postgres connections opened meanwhile; then the medians with their spread, and
the API's rate as a share of each baseline's. One connection first (3 s) gives the latency of
a poll on its own. Every target is saturated from four connections on (its rate no longer
grows, its latency does); 16 keeps a few requests waiting at each without measuring queues.

``--pin`` runs the servers on CPU 0 and the loaders on CPU 1 (Postgres, Redis and S3 anywhere).

``--streams N`` asks whether decoding live streams starves the api's other requests: one
connection polls the job (its latency, not a saturated rate), ``--runs`` times with the api
idle and ``--runs`` times while N speech requests play from live streams (``bench/streams.py``:
frames published at real time, decoded by the api with a SNAC of the real size); the poll's
p99 with the streams against idle, the target 2x, and how much of real time the streams kept.

``--book-hours H`` asks what a long book's poll costs against a one-chunk job's: submits both
through the API (the book: 20 chapters of paragraphs about 215 characters long, one chunk
each, about 250 chunks an hour of speech), then polls each in turn as above; prints each one's
rate, latency and CPU per poll, and the book's CPU per poll and p50 against the one-chunk job's
(target 1.5x).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis
from load import Load, Plan, loader_pool, merged, start_load
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool
from streams import Streams, snac_checkpoint

from shared.farm.tenants import create_key
from shared.infra.db import dispose_engines, session_scope
from workers import farm_processes

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/14"
CHAPTERS, PARAGRAPHS = 5, 8  # the book: a chunk per paragraph, and one per heading


@dataclass
class Target:
    name: str
    url: str
    headers: dict[str, str]
    pid: int


@dataclass
class Run:
    load: Load
    cpu_ms: float  # the server process's, per answered request
    connects: int  # Postgres connections opened meanwhile (a pool that churns opens many)
    postgres_ms: float = 0.0  # Postgres's CPU per answered request

    def line(self, name: str) -> str:
        others = {status: n for status, n in self.load.statuses.items() if status != 200}
        return (
            f"{name} {self.load.per_s:7.1f}/s p50 {self.load.percentile(0.5) * 1e3:5.1f} ms "
            f"p99 {self.load.percentile(0.99) * 1e3:6.1f} ms, {self.cpu_ms:.2f} ms CPU/poll "
            f"(Postgres {self.postgres_ms:.2f}), "
            f"{self.connects} connections opened" + (f", non-200: {others}" if others else "")
        )


def cpu_s(pid: int) -> float:
    """User and system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    """CPU seconds of every Postgres process on this machine so far (the bench's backends among
    them; the rest are idle)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if "(postgres)" in stat.read_text():
                total += cpu_s(int(stat.parent.name))
    return total


def connections_opened(db: Connection) -> int:
    """Connections opened to the bench's database so far (Postgres counts them per database;
    the count is updated within a second or so)."""
    query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
    return int(db.execute(text(query)).scalar_one())


def measure(pool: ProcessPoolExecutor, target: Target, plan: Plan, db: Connection) -> Run:
    at, futures = start_load(pool, target.url, target.headers, plan)
    time.sleep(max(0.0, at - time.monotonic()))
    before, connects, postgres = cpu_s(target.pid), connections_opened(db), postgres_cpu_s()
    time.sleep(plan.seconds)
    used, connects = cpu_s(target.pid) - before, connections_opened(db) - connects
    postgres = postgres_cpu_s() - postgres
    load = merged([future.result() for future in futures])
    answered = max(1, sum(load.statuses.values()))
    return Run(load, used * 1e3 / answered, connects, postgres * 1e3 / answered)


def book() -> str:
    return "\n\n".join(
        f"# Chapter {c + 1}\n\n"
        + "\n\n".join(f"Paragraph {p} of chapter {c + 1} is a chunk." for p in range(PARAGRAPHS))
        for c in range(CHAPTERS)
    )


def finish(db: str, job_id: str) -> None:
    """The job as a succeeded book: a programme, an M4B, captions, a chapter list and a file
    per chapter, each presigned when the job is read (as a listed output, and the chapter's
    files again in its chapter's progress)."""
    at = f"jobs/{job_id}/v1/"
    files = [("programme", "mp3", "book.mp3"), ("m4b", "m4b", "book.m4b")]
    files += [("captions", "vtt", "captions.vtt"), ("captions", "srt", "captions.srt")]
    files += [("chapters", "json", "chapters.json")]
    outputs = [{"kind": k, "format": f, "key": at + name, "version": 1} for k, f, name in files]
    outputs += [
        {"kind": "chapter", "format": "mp3", "key": f"{at}chapter-{c:03d}.mp3", "version": 1}
        | {"chapter": c, "title": f"Chapter {c}", "start_s": 60.0 * c}
        for c in range(1, CHAPTERS + 1)
    ]
    values = {"job": job_id, "at": at, "outputs": json.dumps(outputs)}
    with session_scope(db) as session:
        for statement in (
            "UPDATE chunk SET status = 'done' WHERE job_id = :job",
            "UPDATE chapter SET status = 'done', samples = 1440000, output_key = :at || "
            "'chapter-' || lpad((index + 1)::text, 3, '0') || '.mp3' WHERE job_id = :job",
            "UPDATE job SET status = 'running', started_at = now() WHERE id = :job",
            "UPDATE job SET status = 'succeeded', finished_at = now(), chunks_done = chunks_total,"
            " output_key = :at || 'book.mp3', output_samples = 7200000,"
            " outputs = CAST(:outputs AS json) WHERE id = :job",
        ):
            session.execute(text(statement), values)


@dataclass
class Bench:
    """The processes the bench starts, and what it made; ``close`` undoes all of it."""

    state: Path
    db: str
    prefix: str  # of this run's Redis keys
    env: dict[str, str]
    s3_port: int
    children: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, spec: farm_processes.Process, cpu: int | None) -> int:
        if cpu is not None:
            spec = farm_processes.Process(
                spec.name, ["taskset", "-c", str(cpu), *spec.argv], spec.health_url, spec.env
            )
        self.children[spec.name] = child = farm_processes.start(spec, self.env, self.state)
        farm_processes.wait_healthy(spec, child)
        return child.pid

    def close(self) -> None:
        for child in self.children.values():  # each started in a session of its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        for child in self.children.values():
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
        dispose_engines()
        admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(
                text(f'DROP DATABASE IF EXISTS "{self.db.rsplit("/", 1)[1]}" WITH (FORCE)')
            )
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def new_bench(state: Path) -> Bench:
    tag = uuid.uuid4().hex[:12]
    db = f"postgresql+psycopg://postgres@127.0.0.1:5432/lyre_bench_api_{tag}"
    s3_port = farm_processes.free_port()
    env = {
        **os.environ,
        "LYRE_DATABASE__URL": db,
        "LYRE_REDIS__URL": REDIS,
        "LYRE_REDIS__KEY_PREFIX": f"lyre-bench-api-{tag}:",
        "LYRE_STORAGE__ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "LYRE_STORAGE__ACCESS_KEY_ID": "bench",
        "LYRE_STORAGE__SECRET_ACCESS_KEY": "bench",
        "LYRE_STORAGE__BUCKET": "lyre-bench",
        "BASELINE_DSN": f"host=127.0.0.1 port=5432 user=postgres dbname=lyre_bench_api_{tag}",
    }
    return Bench(state, db, env["LYRE_REDIS__KEY_PREFIX"], env, s3_port)


def start_api(bench: Bench, pin: bool = False) -> tuple[str, int]:
    """S3, the database and one api process (pinned to CPU 0 with ``pin``): its URL and pid."""
    s3 = next(spec for spec in farm_processes.processes(s3_port=bench.s3_port) if spec.name == "s3")
    bench.start(s3, None)
    farm_processes.prepare(bench.env)  # creates and migrates the database, creates the bucket
    api_port = farm_processes.free_port()
    api = next(spec for spec in farm_processes.processes(api_port=api_port) if spec.name == "api")
    return f"http://127.0.0.1:{api_port}", bench.start(api, 0 if pin else None)


def start_targets(bench: Bench, pin: bool, succeeded: bool) -> tuple[list[Target], dict]:
    """The baseline's two routes and the API's, each answering with the job; and the job."""
    api_url, api_pid = start_api(bench, pin)
    baseline_port = farm_processes.free_port()
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    argv = [uvicorn, "--app-dir", str(Path(__file__).parent), "poll_baseline:app"]
    argv += ["--host", "127.0.0.1", "--port", str(baseline_port)]
    baseline = f"http://127.0.0.1:{baseline_port}"
    baseline_pid = bench.start(
        farm_processes.Process("baseline", argv, f"{baseline}/healthz"), 0 if pin else None
    )
    with session_scope(bench.db) as session:
        tenant, key = create_key(session, "poller")
        tenant.requests_per_s = 1_000_000  # counted, never refused
    auth = {"Authorization": f"Bearer {key}"}
    created = httpx.post(f"{api_url}/v1/jobs", json={"text": book()}, headers=auth, timeout=60)
    created.raise_for_status()
    job_id = created.json()["id"]
    if succeeded:
        finish(bench.db, job_id)
    targets = [
        Target("baseline sync ", f"{baseline}/sync/jobs/{job_id}", {}, baseline_pid),
        Target("baseline async", f"{baseline}/async/jobs/{job_id}", {}, baseline_pid),
        Target("api           ", f"{api_url}/v1/jobs/{job_id}", auth, api_pid),
    ]
    for target in targets:
        answer = httpx.get(target.url, headers=target.headers, timeout=10)
        answer.raise_for_status()
        assert answer.json()["id"] == job_id, answer.text
    return targets, answer.json()


def summary(name: str, runs: list[Run]) -> float:
    rates = sorted(run.load.per_s for run in runs)
    p99s = sorted(run.load.percentile(0.99) * 1e3 for run in runs)
    cpus = sorted(run.cpu_ms for run in runs)
    print(
        f"{name} median {statistics.median(rates):7.1f}/s ({rates[0]:.1f}-{rates[-1]:.1f}), "
        f"p99 {statistics.median(p99s):.1f} ms ({p99s[0]:.1f}-{p99s[-1]:.1f}), "
        f"{statistics.median(cpus):.2f} ms CPU/poll ({cpus[0]:.2f}-{cpus[-1]:.2f})",
        flush=True,
    )
    return statistics.median(rates)


def report(targets: list[Target], runs: dict[str, list[Run]]) -> None:
    rates = {name: summary(name, found) for name, found in runs.items()}
    api = rates[targets[-1].name]
    for target in targets[:-1]:
        print(f"api / {target.name.strip()}: {api / rates[target.name]:.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="connections, one request each")
    parser.add_argument("--loaders", type=int, default=1, help="load generator processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per run")
    parser.add_argument("--warmup-s", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--succeeded", action="store_true", help="poll a finished book")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, loaders on CPU 1")
    parser.add_argument("--streams", type=int, default=0, help="poll while N live streams play")
    parser.add_argument("--book-hours", type=float, default=0, help="a book's poll against a job's")
    args = parser.parse_args()
    if args.streams:
        return streams_main(args)
    if args.book_hours:
        return book_main(args)
    cpus = frozenset({1}) if args.pin else frozenset()
    plan = Plan(args.clients, args.loaders, args.warmup_s, args.seconds, cpus)
    alone = Plan(1, 1, 1.0, 3.0, cpus)
    with tempfile.TemporaryDirectory(prefix="lyre-bench-api-") as tmp:
        bench = new_bench(Path(tmp))
        try:
            targets, job = start_targets(bench, args.pin, args.succeeded)
            print(
                f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start; "
                f"the job {job['status']}, {len(job['chapters'])} chapters, "
                f"{job['progress']['chunks_total']} chunks, {len(job['outputs'])} files; "
                f"{args.clients} connections in {args.loaders} loader process(es)"
                f"{', pinned' if args.pin else ''}; {args.warmup_s:g} s warm-up, "
                f"{args.seconds:g} s measured",
                flush=True,
            )
            engine = create_engine(bench.db, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            with loader_pool(args.loaders) as pool, engine.connect() as db:
                for target in targets:
                    print(measure(pool, target, alone, db).line(f"one connection: {target.name}"))
                runs: dict[str, list[Run]] = {target.name: [] for target in targets}
                for number in range(args.runs):
                    for target in targets:
                        runs[target.name].append(run := measure(pool, target, plan, db))
                        print(run.line(f"run {number + 1}: {target.name}"), flush=True)
            report(targets, runs)
        finally:
            bench.close()


def long_book(hours: float) -> str:
    """About ``hours`` of speech at 15 characters a second: 20 chapters of paragraphs of about
    215 characters (one chunk each)."""

    def paragraph(c: int, p: int) -> str:
        return f"Paragraph {p}. " + " ".join(
            f"The {thing} of chapter {c} is one of many in a long book read aloud."
            for thing in ("line", "word", "page")
        )

    per_chapter = round(hours * 3600 * 15 / len(paragraph(10, 100)) / 20)
    return "\n\n".join(
        f"# Chapter {c}\n\n" + "\n\n".join(paragraph(c, p) for p in range(per_chapter))
        for c in range(1, 21)
    )


def book_main(args: argparse.Namespace) -> None:
    """A one-chunk job's poll and a long book's, in turn, on one api process."""
    plan = Plan(args.clients, args.loaders, args.warmup_s, args.seconds, frozenset())
    with tempfile.TemporaryDirectory(prefix="lyre-bench-api-") as tmp:
        bench = new_bench(Path(tmp))
        try:
            api_url, api_pid = start_api(bench)
            with session_scope(bench.db) as session:
                tenant, key = create_key(session, "poller")
                tenant.requests_per_s = 1_000_000  # counted, never refused
                tenant.chars_per_day = 0
            auth = {"Authorization": f"Bearer {key}"}
            targets = []
            for name, text_in in (
                ("one chunk", "Hello there."),
                ("book", long_book(args.book_hours)),
            ):
                began = time.monotonic()
                created = httpx.post(
                    f"{api_url}/v1/jobs", json={"text": text_in}, headers=auth, timeout=600
                )
                created.raise_for_status()
                job = created.json()
                print(
                    f"{name}: {len(text_in):,} characters, {job['progress']['chunks_total']:,} "
                    f"chunks in {len(job['chapters'])} chapters, submitted in "
                    f"{time.monotonic() - began:.1f} s",
                    flush=True,
                )
                targets.append(Target(name, f"{api_url}/v1/jobs/{job['id']}", auth, api_pid))
            engine = create_engine(bench.db, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            runs: dict[str, list[Run]] = {target.name: [] for target in targets}
            with loader_pool(args.loaders) as pool, engine.connect() as db:
                for number in range(args.runs):
                    for target in targets:
                        runs[target.name].append(run := measure(pool, target, plan, db))
                        print(run.line(f"run {number + 1}: {target.name:9s}"), flush=True)
            for target in targets:
                summary(f"{target.name:9s}", runs[target.name])
            one, book_runs = (runs[target.name] for target in targets)
            cpu = statistics.median(r.cpu_ms for r in book_runs) / statistics.median(
                r.cpu_ms for r in one
            )
            p50 = statistics.median(r.load.percentile(0.5) for r in book_runs) / statistics.median(
                r.load.percentile(0.5) for r in one
            )
            pg = statistics.median(r.postgres_ms for r in book_runs) / statistics.median(
                r.postgres_ms for r in one
            )
            print(
                f"the book's poll against the one-chunk job's: api CPU {cpu:.2f}x, Postgres CPU "
                f"{pg:.2f}x, p50 {p50:.2f}x (target 1.5x)",
                flush=True,
            )
        finally:
            bench.close()


def streams_main(args: argparse.Namespace) -> None:
    """Idle and busy runs in turn, so that the host's drift (its idle p99 moved between 2.4 and 9 ms
    within minutes here) falls on both sides of each ratio."""
    polling = Plan(1, 1, args.warmup_s, args.seconds, frozenset())
    with tempfile.TemporaryDirectory(prefix="lyre-bench-api-") as tmp:
        bench = new_bench(Path(tmp))
        bench.env["LYRE_ORPHEUS__SNAC_MODEL"] = str(snac_checkpoint(Path(tmp) / "snac"))
        # a farm whose engine makes SNAC codes: the api starts its decoding processes with it
        bench.env.update(LYRE_ENGINE="simulated", LYRE_SIMULATED__CODES="true")
        try:
            targets, _ = start_targets(bench, False, False)
            api = targets[-1]
            engine = create_engine(bench.db, isolation_level="AUTOCOMMIT", poolclass=NullPool)
            ratios, played = [], []
            with loader_pool(1) as pool, engine.connect() as db:
                for _ in range(args.runs):
                    idle = measure(pool, api, polling, db)
                    print(idle.line("idle api:      "), flush=True)
                    streams = Streams(
                        api.url.split("/v1/")[0], api.headers, bench.db, REDIS, bench.prefix
                    )
                    try:
                        streams.start(args.streams)
                        waited = streams.wait_flowing(args.streams)
                        began, heard = time.monotonic(), streams.heard
                        busy = measure(pool, api, polling, db)
                        seconds = (streams.heard - heard) / 2 / 24000
                        played.append(seconds / (time.monotonic() - began) / args.streams)
                    finally:
                        streams.close()
                    print(
                        busy.line(f"{args.streams} streams:     ")
                        + f", every stream heard after {waited:.1f} s, {played[-1]:.2f}x real time",
                        flush=True,
                    )
                    ratios.append(busy.load.percentile(0.99) / idle.load.percentile(0.99))
            each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            print(
                f"poll p99 while {args.streams} streams play / idle, run by run: {each}x (median "
                f"{statistics.median(ratios):.2f}x; target 2x); the streams played "
                f"{statistics.median(played):.2f}x real time each",
                flush=True,
            )
        finally:
            bench.close()


if __name__ == "__main__":
    main()
