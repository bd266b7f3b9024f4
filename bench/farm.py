"""The farm's own cost per chunk: a 500-chunk job through the real processes, free engine.

    python bench/farm.py [--chunks 500]

Starts the farm as ``make farm-up`` does (api, dispatcher, gpu/cpu/stitch/webhook workers,
beat, Flower, moto's S3 server; local Postgres and Redis) with ``LYRE_ENGINE=null``, so that
what is measured
is the farm: queues, database round trips, object store, stitch. Submits a job through the
API, waits for it, then reads each task's run time from the workers' logs; three such jobs one
after another (``--jobs``). Prints for each job the per-chunk overhead (the gpu stage's median
task time plus the cpu stage's), its wall time and the CPU time all processes (with their
children, Postgres and Redis included, from /proc) spent per chunk; then the median of the
jobs' overheads, the p99 over all tasks, and the CPU per chunk of each process. Each run starts
from empty tables. A warm-up job runs first and is not measured: it pays for each process's
first connections. A fixed Python loop timed before and after shows how fast the VM was.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis
from sqlalchemy import text

from shared.farm.tenants import create_key
from shared.infra.db import dispose_engines, session_scope
from workers import farm_processes
from workers.bootstrap import ensure_database

DB = "postgresql+psycopg://postgres@127.0.0.1:5432/lyre_bench_farm"
REDIS = "redis://127.0.0.1:6379/14"
TASK_LINE = re.compile(
    r"Task (gpu\.generate_chunk|cpu\.decode_chunk)\[[^\]]+\] succeeded in "
    r"([0-9.e-]+)s"
)


def start_farm(
    state: Path,
    api_port: int,
    flower_port: int,
    s3_port: int,
    children: dict,
    settings: dict[str, str] | None = None,
) -> None:
    """Start every process into ``children`` (so that a failed start still gets stopped);
    ``settings``: LYRE_* variables over the free engine's."""
    env = {
        **os.environ,
        "LYRE_DATABASE__URL": DB,
        "LYRE_REDIS__URL": REDIS,
        "LYRE_ENGINE": "null",
        "LYRE_STORAGE__ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "LYRE_STORAGE__ACCESS_KEY_ID": "bench",
        "LYRE_STORAGE__SECRET_ACCESS_KEY": "bench",
        "LYRE_STORAGE__BUCKET": "lyre-bench",
        "LYRE_FLOWER__PORT": str(flower_port),
        **(settings or {}),
    }
    specs = farm_processes.processes(api_port, s3_port, flower_port, state_dir=state)
    s3, rest = specs[0], specs[1:]
    children[s3.name] = farm_processes.start(s3, env, state)
    farm_processes.wait_healthy(s3, children[s3.name])
    farm_processes.prepare(env)
    for spec in rest:
        children[spec.name] = farm_processes.start(spec, env, state)
        farm_processes.wait_healthy(spec, children[spec.name])


def stop_farm(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every process's group, then wait for each; the database's pools closed."""
    for child in children.values():
        os.killpg(child.pid, signal.SIGTERM)
    for child in children.values():
        child.wait(timeout=60)
    dispose_engines()


def run_job(api: str, chunks: int) -> tuple[float, dict]:
    with session_scope(DB) as session:
        _, key = create_key(session, f"bench-{time.time_ns()}")
    headers = {"Authorization": f"Bearer {key}"}
    text = "\n\n".join(f"Paragraph {i} is one chunk of the book." for i in range(chunks))
    started = time.perf_counter()
    job = httpx.post(
        f"{api}/v1/jobs", json={"text": text, "format": "mp3"}, headers=headers, timeout=120
    ).json()
    while job["status"] not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.25)  # a client polling faster than this only costs the api CPU
        job = httpx.get(f"{api}/v1/jobs/{job['id']}", headers=headers, timeout=30).json()
    return time.perf_counter() - started, job


SERVICES = {"postgres": "postgres", "redis-server": "redis"}  # /proc/PID/comm → name


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU time (user + system) so far of each named process and all its descendants, and of
    the local Postgres and Redis servers the farm shares the machine with."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    services = dict.fromkeys(SERVICES.values(), 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            comm, rest = stat.read_text().rsplit(")", 1)
        except OSError:  # gone meanwhile
            continue
        pid, fields = int(stat.parent.name), rest.split()
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        service = SERVICES.get(comm.split("(", 1)[1])
        if service:
            services[service] += times[pid]

    def tree(pid: int) -> float:
        return times.get(pid, 0.0) + sum(tree(c) for c, p in parents.items() if p == pid)

    return {**{name: tree(pid) for name, pid in roots.items()}, **services}


WORKER_LOGS = ("gpu-worker.log", "cpu-worker.log")


def log_sizes(state: Path) -> dict[str, int]:
    return {log: (state / log).stat().st_size for log in WORKER_LOGS}


def task_times(state: Path, since: dict[str, int]) -> dict[str, list[float]]:
    """Each task's run time, from the workers' log lines written after ``since``."""
    times: dict[str, list[float]] = {"gpu.generate_chunk": [], "cpu.decode_chunk": []}
    for log in WORKER_LOGS:
        with (state / log).open("rb") as file:
            file.seek(since[log])
            text = file.read().decode(errors="replace")
        for match in TASK_LINE.finditer(text):
            times[match.group(1)].append(float(match.group(2)))
    return times


@dataclass
class Measured:
    wall_s: float
    status: str
    times: dict[str, list[float]]  # task name -> run times
    cpu_s: dict[str, float]  # process -> CPU seconds

    def overhead(self) -> float:
        """Per-chunk overhead: the gpu stage's median task time plus the cpu stage's."""
        return sum(statistics.median(values) for values in self.times.values())


def measure_job(api: str, chunks: int, state: Path, roots: dict[str, int]) -> Measured:
    since = log_sizes(state)
    before = cpu_seconds(roots)
    wall, job = run_job(api, chunks)
    time.sleep(1)  # the last log lines
    after = cpu_seconds(roots)
    used = {name: after[name] - before[name] for name in after}
    return Measured(wall, job["status"], task_times(state, since), used)


def host_speed_s() -> float:
    """CPU seconds of a fixed pure-Python loop: this VM's speed drifts (up to 2x over an
    hour), and every figure above moves with it."""
    started, total = time.process_time(), 0
    for i in range(5_000_000):
        total += i * i
    return time.process_time() - started


def report(runs: list[Measured], chunks: int) -> None:
    for n, run in enumerate(runs, 1):
        medians = ", ".join(
            f"{name} {statistics.median(v) * 1000:.1f}" for name, v in run.times.items()
        )
        cpu = sum(run.cpu_s.values()) * 1000 / chunks
        print(
            f"job {n} {run.status}: {chunks} chunks in {run.wall_s:.1f} s; median task ms: "
            f"{medians}; overhead {run.overhead() * 1000:.1f} ms; CPU {cpu:.1f} ms per chunk"
        )
    p99 = 0.0
    for name in runs[0].times:
        values = [v for run in runs for v in run.times[name]]
        p99 += statistics.quantiles(values, n=100)[98]
    median = statistics.median(run.overhead() for run in runs)
    print(
        f"per-chunk farm overhead (both stages): median {median * 1000:.1f} ms "
        f"(median of the {len(runs)} jobs), p99 at most {p99 * 1000:.1f} ms"
    )
    shares = ", ".join(
        f"{name} {sum(run.cpu_s[name] for run in runs) * 1000 / (chunks * len(runs)):.1f}"
        for name in runs[0].cpu_s
    )
    total = sum(sum(run.cpu_s.values()) for run in runs) * 1000 / (chunks * len(runs))
    print(f"CPU time per chunk, all processes: {total:.1f} ms ({shares})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=3, help="measured jobs, one after another")
    parser.add_argument("--warmup", type=int, default=20, help="chunks of a job run first")
    args = parser.parse_args()
    if args.chunks < 2 or args.jobs < 1 or args.warmup < 1:
        parser.error("--chunks must be at least 2, --jobs and --warmup at least 1")
    ensure_database(DB)
    redis.Redis.from_url(REDIS).flushdb()
    api_port, flower_port, s3_port = (farm_processes.free_port() for _ in range(3))
    speed_before = host_speed_s()
    with tempfile.TemporaryDirectory(prefix="lyre-bench-farm-") as tmp:
        state = Path(tmp)
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            start_farm(state, api_port, flower_port, s3_port, children)
            with session_scope(DB) as session:  # rows and dead tuples of earlier runs slow this one
                session.execute(text("TRUNCATE tenant, job, webhook_delivery CASCADE"))
            roots = {name: child.pid for name, child in children.items()}
            api = f"http://127.0.0.1:{api_port}"
            warm_wall, _ = run_job(api, args.warmup)  # first tasks load code, open connections
            time.sleep(1)
            runs = [measure_job(api, args.chunks, state, roots) for _ in range(args.jobs)]
        finally:
            stop_farm(children)
    print(f"warm-up job of {args.warmup} chunks (not measured): {warm_wall:.1f} s")
    print("8 gpu-worker threads, 2 cpu-worker processes; wall time is submit to succeeded")
    report(runs, args.chunks)
    print(
        f"host speed: a fixed Python loop took {speed_before:.2f} s of CPU before the farm "
        f"started and {host_speed_s():.2f} s after it stopped (lower is faster)"
    )


if __name__ == "__main__":
    main()
