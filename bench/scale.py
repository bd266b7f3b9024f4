"""The control plane's ceiling: how many chunks a second one Postgres moves through the farm's
states, with the dispatcher's window full.

    python bench/scale.py [--seconds 30] [--gpu-threads 200] [--cpu-threads 32]
                          [--engine-s 0.2] [--processes 1] [--chunks 60000]

No model, no audio, no Celery: the farm's own statements, as its processes run them, against
a fresh migrated database of its own (and Redis keys of their own):

- the real dispatcher (``shared.farm.dispatch.dispatch``, its ticks woken by the NOTIFY of
  every generated chunk, as ``workers.dispatcher`` is), its messages on Redis lists;
- gpu workers, ``--gpu-threads`` of them in ``--processes`` processes: each takes a chunk's
  message, claims it (``CLAIM_PENDING_CHUNK``), holds it ``--engine-s`` (the engine's time: the
  window stays full as long as the threads keep up) and moves it to generated with a few
  hundred bytes of codes, the dispatcher's NOTIFY in the same statement
  (``CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED``);
- cpu workers, ``--cpu-threads`` in each process: claim the decode (``CLAIM_GENERATED_CHUNK``),
  finish it (``CHUNK_GENERATED_TO_DONE_AND_COUNTED``: the chunk, its job's and its chapter's
  counters in one statement) and lease its chapter's stitch when its count says it completes
  it (``LEASE_COMPLETE_CHAPTER``);
- the chapters' and the books' stitches, their files made by stand-ins (nothing encoded or
  uploaded), their claims, leases and state changes the real ones;
- the reconciler every second (``shared.farm.reconcile``), as beat runs it.

Every gpu worker registers its slots, so the dispatcher's window is ``--gpu-threads``. The
jobs: ``--chunks`` chunks in books of 2,000 (20 chapters of 100) for 8 tenants, enough for
the run, analysed as autovacuum would. Prints the chunks done a second over the measured
seconds (after a warm-up), the CPU each process kind and Postgres used per chunk (from /proc;
Postgres's with the backends that ended while it measured), the Postgres backends started
meanwhile, and each statement's calls per chunk, mean and p99 time as its caller saw it: the
one with the most time per chunk is what limits the farm first. Then each statement of a
chunk's way alone, on one connection: Postgres's own time (EXPLAIN ANALYZE) and its backend's
CPU serving it, and its caller's CPU as the farm sends it (SQLAlchemy Core) and as a prepared
psycopg statement.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import multiprocessing
import os
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import redis
from sqlalchemy import create_engine, insert, text

from shared.audio import SAMPLE_RATE
from shared.audio.finish import finish_chunk
from shared.farm import book_stitch, chapter_stitch
from shared.farm.context import FarmContext
from shared.farm.dispatch import dispatch
from shared.farm.gpu_workers import register_gpu_worker
from shared.farm.reconcile import reconcile
from shared.farm.stage_ends import (
    CHUNK_GENERATED_TO_DONE_AND_COUNTED,
    CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED,
)
from shared.farm.transitions import (
    CLAIM_GENERATED_CHUNK,
    CLAIM_PENDING_CHUNK,
    LEASE_COMPLETE_CHAPTER,
)
from shared.infra import queues
from shared.infra.db import (
    bookkeeping_scope,
    dispose_engines,
    migrate,
    session_scope,
)
from shared.infra.models import Chapter, Chunk, Job, Tenant, utcnow
from shared.infra.settings import (
    AudioSettings,
    DatabaseSettings,
    RedisSettings,
    Settings,
)
from shared.infra.storage import LocalStore

ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS = "redis://127.0.0.1:6379/13"
BOOK_CHUNKS, CHAPTERS, TENANTS = 2000, 20, 8
CODES = bytes(600)  # a chunk's codes in its row: about what 27 s of SNAC codes take
KINDS = ("dispatcher", "gpu", "cpu", "stitch")
WAY = "a chunk's way (the lease apart)"


# --- the farm the workers see -----------------------------------------------------------------


class ListSender:
    """The farm's messages on Redis lists, one per stage (what Celery carries, without it)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client, self.prefix = client, prefix

    def _push(self, stage: str, *ids: object) -> None:
        self.client.lpush(f"{self.prefix}{stage}", json.dumps([str(i) for i in ids]))

    def generate(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        self._push("generate", job_id, index)

    def decode(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        self._push("decode", job_id, index)

    def stitch_chapter(self, job_id: uuid.UUID, chapter: int, urgent: bool = False) -> None:
        self._push("chapter", job_id, chapter)

    def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None:
        self._push("stitch", job_id)

    def deliver(self, delivery_id: str, delay_s: float = 0) -> None:
        pass

    def window_lost(self) -> bool:
        return False


def farm_of(config: dict[str, Any]) -> FarmContext:
    settings = Settings(
        database=DatabaseSettings(url=config["db"]),
        redis=RedisSettings(url=REDIS, key_prefix=config["prefix"]),
    )
    client = redis.Redis.from_url(REDIS, max_connections=4096)  # every thread's sends
    sender = ListSender(client, config["prefix"])
    store, db = LocalStore(Path(config["store"])), config["db"]
    return FarmContext(
        settings, store, sender, partial(session_scope, db), partial(bookkeeping_scope, db)
    )


class Timings:
    """Each statement's times as its callers saw them, in this process."""

    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = collections.defaultdict(list)
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def timed(self, name: str) -> Any:
        began = time.perf_counter()
        yield
        with self.lock:
            self.seconds[name].append(time.perf_counter() - began)


def run(farm: FarmContext, timings: Timings, name: str, statement: Any, params: dict) -> Any:
    with timings.timed(name), farm.bookkeeping() as connection:
        result = connection.execute(statement, params)
        return result.all() if result.returns_rows else result.rowcount


# --- the workers --------------------------------------------------------------------------------


def messages(farm: FarmContext, stage: str, until: float) -> Iterator[dict[str, Any]]:
    """The chunks whose messages come on ``stage``'s list, as a statement's ids, until then."""
    client = redis.Redis.from_url(REDIS)
    key = f"{farm.settings.redis.key_prefix}{stage}"
    while time.monotonic() < until:
        message = client.brpop([key], timeout=1)
        if message is not None:
            job, index = json.loads(message[1])
            yield {"job": uuid.UUID(job), "idx": int(index), "lease": farm.lease(), "at": utcnow()}


def gpu_thread(farm: FarmContext, timings: Timings, engine_s: float, until: float) -> None:
    for ids in messages(farm, "generate", until):
        if not run(farm, timings, "CLAIM_PENDING_CHUNK", CLAIM_PENDING_CHUNK, ids):
            continue
        time.sleep(engine_s)  # in the engine
        generated = {
            **ids,
            "output": CODES,
            "n_dropped": 0,
            "seconds": engine_s,
            "engine_share": engine_s / 64,
            "take": 0,
            "takes": None,
            "suspect": None,
        }
        statement = CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED
        if run(farm, timings, "CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED", statement, generated):
            farm.send.decode(ids["job"], ids["idx"])


def speech_stats() -> dict[str, Any]:
    """A 27-second chunk's row as a decode leaves it (noise bursts with speech's level)."""
    rng = np.random.default_rng(0)
    pcm = (0.1 * rng.standard_normal(27 * SAMPLE_RATE)).astype(np.float32)
    pcm *= np.repeat(rng.uniform(size=27 * 4) > 0.2, SAMPLE_RATE // 4)[: len(pcm)]
    _, stats = finish_chunk(pcm, AudioSettings())
    return {
        "n": stats.samples,
        "peak": stats.peak,
        "energy": stats.energy,
        "steps": stats.stored_steps(),
    }


STATS: dict[str, Any] = {}  # each process's, from its config


def cpu_thread(farm: FarmContext, timings: Timings, until: float) -> None:
    for ids in messages(farm, "decode", until):
        if not run(farm, timings, "CLAIM_GENERATED_CHUNK", CLAIM_GENERATED_CHUNK, ids):
            continue
        done = {
            **ids,
            **STATS,
            "seconds": 0.2,
            "cpu": 0.2,
            "bytes": 2_592_000,
            "engine_share": 0.0,
            "takes": None,
            "suspect": None,
        }
        statement = CHUNK_GENERATED_TO_DONE_AND_COUNTED
        (moved, _, full), *_ = run(
            farm, timings, "CHUNK_GENERATED_TO_DONE_AND_COUNTED", statement, done
        )
        if moved and full:
            leased = run(farm, timings, "LEASE_COMPLETE_CHAPTER", LEASE_COMPLETE_CHAPTER, ids)
            if leased:
                farm.send.stitch_chapter(ids["job"], leased[0][0])


def stitch_thread(farm: FarmContext, timings: Timings, until: float) -> None:
    """Chapters' and books' stitches: the real stages, their files made by stand-ins."""
    client = redis.Redis.from_url(REDIS)
    prefix = farm.settings.redis.key_prefix
    while time.monotonic() < until:
        message = client.brpop([f"{prefix}chapter", f"{prefix}stitch"], timeout=1)
        if message is None:
            continue
        ids = json.loads(message[1])
        if message[0].decode().endswith("chapter"):
            with timings.timed("stitch_chapter"):
                chapter_stitch.stitch_chapter(farm, uuid.UUID(ids[0]), int(ids[1]))
        else:
            with timings.timed("stitch_job"):
                book_stitch.stitch_job(farm, uuid.UUID(ids[0]))


def no_chapter_file(*args: Any) -> tuple[str, int, None]:
    _, _, job, chapter, claimed, *_ = args
    return f"jobs/{job.id}/v{claimed.version}/chapter-{chapter + 1:03d}.mp3", 1_440_000, None


def no_book_files(farm: Any, lease: Any, book: Any, checks: Any, folder: Path, *_: Any) -> Any:
    path = folder / f"book.{book.mastering.format}"
    path.write_bytes(b"")
    return [("programme", book.mastering.format, path)]


def heartbeat(farm: FarmContext, threads: int, until: float) -> None:
    """This process's gpu worker row, its slots such that the window is its threads."""
    name = f"bench-{os.getpid()}"
    while time.monotonic() < until:
        slots = math.floor(threads / farm.settings.dispatch.window_per_slot)
        register_gpu_worker(farm, name, slots)
        time.sleep(farm.settings.dispatch.heartbeat_s)


def dispatcher(farm: FarmContext, timings: Timings, until: float) -> None:
    """``workers.dispatcher``'s loop: a tick when woken by a NOTIFY, at least every 0.5 s."""
    import psycopg

    url = farm.settings.database.url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url, autocommit=True) as listening:
        listening.execute(f"LISTEN {queues.DISPATCH_CHANNEL}")
        reconciled = 0.0
        while time.monotonic() < until:
            with timings.timed("dispatch"):
                dispatch(farm)
            if time.monotonic() - reconciled > 1.0:
                with timings.timed("reconcile"):
                    reconcile(farm)
                reconciled = time.monotonic()
            for _ in listening.notifies(timeout=0.5, stop_after=1):
                pass
            time.sleep(0.05)  # MIN_GAP_S: many wake-ups, one tick


def process(kind: str, config: dict[str, Any], until: float, out: Any) -> None:
    """One process of ``kind``'s threads; its statements' times to ``out`` at the end."""
    chapter_stitch._chapter_file = no_chapter_file  # type: ignore[assignment]
    book_stitch._encode_all = no_book_files  # type: ignore[assignment]
    farm, timings = farm_of(config), Timings()
    STATS.update(config["stats"], steps=bytes.fromhex(config["steps"]))
    if kind == "dispatcher":
        threads = [(dispatcher, (farm, timings, until))]
    elif kind == "stitch":
        threads = [(stitch_thread, (farm, timings, until))] * 2
    elif kind == "gpu":
        threads = [(gpu_thread, (farm, timings, config["engine_s"], until))] * config["gpu"]
        threads += [(heartbeat, (farm, config["gpu"], until))]
    else:
        threads = [(cpu_thread, (farm, timings, until))] * config["cpu"]
    running = [threading.Thread(target=t, args=a, daemon=True) for t, a in threads]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    out.put((kind, os.getpid(), dict(timings.seconds)))
    dispose_engines()


# --- the run ------------------------------------------------------------------------------------


def populate(db: str, chunks: int) -> None:
    """Books of BOOK_CHUNKS chunks for TENANTS tenants, queued."""
    engine = create_engine(db)
    now = utcnow()
    with engine.begin() as connection:
        tenants = [uuid.uuid4() for _ in range(TENANTS)]
        connection.execute(
            insert(Tenant),
            [{"id": t, "name": f"t{i}", "webhook_secret": ""} for i, t in enumerate(tenants)],
        )
        for number in range(max(1, chunks // BOOK_CHUNKS)):
            job = uuid.uuid4()
            connection.execute(
                insert(Job),
                {
                    "id": job,
                    "tenant_id": tenants[number % TENANTS],
                    "status": "queued",
                    "voice": "tara",
                    "format": "mp3",
                    "engine": "simulated",
                    "mastering": {"format": "mp3"},
                    "chunks_total": BOOK_CHUNKS,
                    "created_at": now,
                },
            )
            per = BOOK_CHUNKS // CHAPTERS
            connection.execute(
                insert(Chapter),
                [
                    {"job_id": job, "index": c, "title": f"Chapter {c + 1}", "status": "waiting"}
                    | {"chunks_total": per, "chunks_done": 0}
                    for c in range(CHAPTERS)
                ],
            )
            connection.execute(
                insert(Chunk),
                [
                    {"job_id": job, "index": i, "status": "pending", "text": "x" * 380}
                    | {"voice": "tara", "boundary": "sentence", "chapter": i // per}
                    for i in range(BOOK_CHUNKS)
                ],
            )
    with engine.connect() as connection:  # as autovacuum would (it is off on some servers)
        connection.execute(text("ANALYZE"))
        connection.commit()
    engine.dispose()


PROBED = {  # a chunk's way through the stages, statement by statement
    "CLAIM_PENDING_CHUNK": CLAIM_PENDING_CHUNK,
    "CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED": CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED,
    "CLAIM_GENERATED_CHUNK": CLAIM_GENERATED_CHUNK,
    "CHUNK_GENERATED_TO_DONE_AND_COUNTED": CHUNK_GENERATED_TO_DONE_AND_COUNTED,
    "LEASE_COMPLETE_CHAPTER": LEASE_COMPLETE_CHAPTER,
}
ONCE_A_CHAPTER = {"LEASE_COMPLETE_CHAPTER"}  # by the decode that fills the chapter's count


def probe(db: str, config: dict[str, Any], chunks: int = 40) -> dict[str, dict[str, list[float]]]:
    """For each statement of a chunk's way, one client alone, on chunks still waiting after
    the run (each chunk's way in a transaction, rolled back), in ms: Postgres's own time
    (planning and execution, EXPLAIN ANALYZE), and the client's CPU for the statement as the
    farm sends it (SQLAlchemy Core on a pooled connection) and as a prepared psycopg
    statement."""
    import psycopg
    from sqlalchemy.dialects import postgresql

    url = db.replace("postgresql+psycopg", "postgresql")
    found: dict[str, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list)
    )
    with psycopg.connect(url) as connection:
        waiting = connection.execute(
            "SELECT c.job_id, c.index FROM chunk c JOIN job j ON j.id = c.job_id "
            "WHERE c.status = 'pending' AND j.status = 'running' LIMIT %s",
            (chunks,),
        ).fetchall()
    ways = [way_of(config, job, index) for job, index in waiting]
    compiled = {
        name: statement.compile(dialect=postgresql.psycopg.dialect())
        for name, statement in PROBED.items()
    }
    for kind in ("postgres", "psycopg"):
        with psycopg.connect(url) as connection:
            for params in ways:
                for name, statement in compiled.items():
                    constants = {  # its own bound values (an enum's, as SQLAlchemy sends it)
                        key: getattr(value, "value", value)
                        for key, value in statement.params.items()
                        if key not in params
                    }
                    if kind == "postgres":
                        plan = connection.execute(
                            "EXPLAIN (ANALYZE, FORMAT JSON) " + str(statement), constants | params
                        ).fetchone()[0][0]
                        found[name][kind].append(plan["Planning Time"] + plan["Execution Time"])
                        continue
                    started, served = time.thread_time(), on_cpu_ms(connection.info.backend_pid)
                    cursor = connection.execute(str(statement), constants | params, prepare=True)
                    if cursor.description:
                        cursor.fetchall()
                    found[name][kind].append(1e3 * (time.thread_time() - started))
                    found[name]["backend"].append(on_cpu_ms(connection.info.backend_pid) - served)
                connection.rollback()
    engine = create_engine(db)
    with engine.connect() as connection:
        for params in ways:
            for name, statement in PROBED.items():
                # its own parameters only: a column's name among them would add to an UPDATE's SET
                mine = {k: v for k, v in params.items() if k in compiled[name].params}
                started = time.thread_time()
                result = connection.execute(statement, mine)
                if result.returns_rows:
                    result.all()
                found[name]["sqlalchemy"].append(1e3 * (time.thread_time() - started))
            connection.rollback()
    engine.dispose()
    return found


def on_cpu_ms(pid: int) -> float:
    """The time a process has run on a CPU, in ms (the kernel's schedstat, in nanoseconds)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6


def way_of(config: dict[str, Any], job: Any, index: int) -> dict[str, Any]:
    """The parameters of every statement of a chunk's way."""
    return {
        "job": job,
        "idx": index,
        "lease": utcnow(),
        "at": utcnow(),
        **config["stats"],
        "steps": bytes.fromhex(config["steps"]),
        "output": CODES,
        "n_dropped": 0,
        "seconds": 0.2,
        "engine_share": 0.0,
        "cpu": 0.2,
        "bytes": 2_592_000,
        "take": 0,
        "takes": None,
        "suspect": None,
    }


def chunks_done(db: str) -> int:
    engine = create_engine(db)
    with engine.connect() as connection:
        done = connection.execute(text("SELECT coalesce(sum(chunks_done), 0) FROM job")).scalar()
    engine.dispose()
    return int(done or 0)


def cpu_of(pids: list[int], children: bool = False) -> float:
    """The processes' CPU seconds; with ``children``, also of their children that ended."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = sum(int(v) for v in fields[11 : 15 if children else 13])
            total += ticks / os.sysconf("SC_CLK_TCK")
    return total


def postgres_cpu() -> float:
    """Every Postgres process's CPU seconds, and those of its backends that ended (in the
    postmaster's children's time): a backend opened and closed between two readings counts.
    One alive at the first and ended at the second counts its whole life in the second, which
    the first's reading of it takes back out."""
    return cpu_of(pids_of("postgres"), children=True)


def sessions(connection: Any) -> int:
    """Backends started on the bench's database so far (pg_stat_database.sessions, as
    Postgres's statistics have it: up to a second late)."""
    started = connection.execute(
        text("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
    ).scalar()
    connection.rollback()  # the next reading in a transaction of its own sees new figures
    return int(started or 0)


def machine_busy_s() -> float:
    """CPU seconds every CPU of the machine has spent busy so far (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def pids_of(name: str) -> list[int]:
    """The processes whose command is ``name`` (Postgres's, Redis's)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if f"({name})" in stat.read_text(errors="replace"):
                found.append(int(stat.parent.name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="measured")
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--gpu-threads", type=int, default=200, help="all together")
    parser.add_argument("--cpu-threads", type=int, default=32, help="all together")
    parser.add_argument("--engine-s", type=float, default=0.2, help="a chunk in the engine")
    parser.add_argument("--processes", type=int, default=1, help="of each worker kind")
    parser.add_argument("--chunks", type=int, default=60_000)
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:10]
    name = f"lyre_bench_scale_{tag}"
    db = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = Path(f"/dev/shm/lyre-bench-scale-{tag}")
    config = {
        "db": db,
        "prefix": f"lyre-bench-scale-{tag}:",
        "store": str(store),
        "engine_s": args.engine_s,
        "gpu": args.gpu_threads // args.processes,
        "cpu": args.cpu_threads // args.processes,
    }
    stats = speech_stats()
    config["steps"] = stats.pop("steps").hex()
    config["stats"] = stats
    context = multiprocessing.get_context("spawn")
    try:
        migrate(db)
        populate(db, args.chunks)
        print(
            f"{os.cpu_count()} CPUs; {args.chunks:,} chunks queued; window "
            f"{config['gpu'] * args.processes} chunks, {args.engine_s:g} s each in the engine; "
            f"{config['gpu'] * args.processes} gpu and {config['cpu'] * args.processes} cpu "
            f"worker threads in {args.processes} processes each",
            flush=True,
        )
        out = context.Queue()
        until = time.monotonic() + args.warmup_s + args.seconds + 2
        kinds = ["dispatcher", "stitch"] + ["gpu", "cpu"] * args.processes
        started = [
            (kind, context.Process(target=process, args=(kind, config, until, out)))
            for kind in kinds
        ]
        for _, child in started:
            child.start()
        time.sleep(args.warmup_s)
        pids = {kind: [c.pid for k, c in started if k == kind] for kind in KINDS}
        pids["Redis"] = pids_of("redis-server")
        watcher = create_engine(db)
        watching = watcher.connect()  # one backend for the readings
        opened = sessions(watching)
        before = (chunks_done(db), {k: cpu_of(p) for k, p in pids.items()}, postgres_cpu())
        busy = machine_busy_s()
        began = time.monotonic()
        time.sleep(args.seconds)
        seconds = time.monotonic() - began
        done = chunks_done(db) - before[0]
        used = {k: cpu_of(p) - before[1][k] for k, p in pids.items()}
        postgres = postgres_cpu() - before[2]
        opened = max(0, sessions(watching) - opened - 2)  # less the chunks_done readings' own
        watching.close()
        watcher.dispose()
        busy = machine_busy_s() - busy
        reports = [out.get(timeout=60) for _ in started]
        for _, child in started:
            child.join(timeout=30)
        report(done, seconds, used, postgres, reports, chunks_done(db))
        print(f"Postgres backends started while measured: {opened} ({opened / seconds:.1f}/s)")
        print(f"the machine was busy {busy / seconds:.2f} of its {os.cpu_count()} CPUs")
        alone = probe(db, config)
        print(
            "each statement alone, one client, medians in ms: Postgres's own time (EXPLAIN "
            "ANALYZE) and its backend's CPU serving the prepared statement (bind, execute, "
            "the socket); the client's CPU through SQLAlchemy Core, and as a prepared "
            "psycopg statement"
        )
        way = collections.Counter[str]()
        for name, times in sorted(alone.items(), key=lambda item: -median(item[1], "backend")):
            medians = {kind: statistics.median(values) for kind, values in times.items()}
            if name not in ONCE_A_CHAPTER:
                way.update(medians)
            print(
                f"  {name:40} Postgres {medians['postgres']:6.3f}, backend "
                f"{medians['backend']:6.3f}; SQLAlchemy {medians['sqlalchemy']:6.3f}, psycopg "
                f"prepared {medians['psycopg']:6.3f}"
            )
        print(
            f"  {WAY:40} Postgres {way['postgres']:6.3f}, backend "
            f"{way['backend']:6.3f}; SQLAlchemy {way['sqlalchemy']:6.3f}, psycopg prepared "
            f"{way['psycopg']:6.3f}"
        )
    finally:
        dispose_engines()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        client = redis.Redis.from_url(REDIS)
        keys = list(client.scan_iter(match=f"{config['prefix']}*", count=1000))
        if keys:
            client.delete(*keys)
        import shutil

        shutil.rmtree(store, ignore_errors=True)


def median(times: dict[str, list[float]], kind: str) -> float:
    return statistics.median(times[kind])


def report(
    done: int, seconds: float, used: dict[str, float], postgres: float, reports: list, all: int
) -> None:
    """The measured seconds' rate and CPU; the statements over the whole run (``all`` chunks
    done in it)."""
    rate = done / seconds
    per = max(done, 1)
    print(f"chunks done: {done:,} in {seconds:.1f} s = {rate:,.0f} chunks/s (target 1,000)")
    cpu = ", ".join(f"{kind} {1e3 * s / per:.2f}" for kind, s in used.items())
    print(f"CPU per chunk, ms: {cpu}, Postgres {1e3 * postgres / per:.2f}")
    print(
        f"Postgres busy {postgres / seconds:.2f} cores; one Postgres core would move "
        f"{per / max(postgres, 1e-9):,.0f} chunks/s at this cost"
    )
    merged: dict[str, list[float]] = collections.defaultdict(list)
    for _, _, times in reports:
        for name, values in times.items():
            merged[name].extend(values)
    print(f"{'statement':40} {'per chunk':>9} {'mean ms':>8} {'p99 ms':>8} {'ms/chunk':>9}")
    rows, per = [], max(all, 1)
    for name, values in merged.items():
        values.sort()
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        rows.append((sum(values) / per, name, len(values) / per, statistics.mean(values), p99))
    for share, name, calls, mean, p99 in sorted(rows, reverse=True):
        print(f"{name:40} {calls:9.3f} {1e3 * mean:8.2f} {1e3 * p99:8.2f} {1e3 * share:9.2f}")


if __name__ == "__main__":
    main()
