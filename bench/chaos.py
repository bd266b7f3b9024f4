"""Chaos on the native farm: jobs survive faults with nothing lost, doubled or changed.

    python bench/chaos.py [--seed N] [--kills 20] [--s3-down-s 30] [--small]

Starts the farm as ``make farm-up`` does (``workers.farmctl up``: supervised, each process
restarted when it exits) with its own Postgres cluster, its own Redis server and a proxy in
front of its S3 endpoint (bench/faults.py), on the espeak engine. Then:

1. a fault-free run: each job of the workload (a chaptered M4B, an MP3 book, an Ogg Opus
   article, a FLAC page; every one with a ``seed`` and a webhook) once; the sha256 of each of
   its files, and the webhook events it sent;
2. the chaos run: the same jobs again, all at once, and again until the faults are over,
   while faults come one after another at random moments (the schedule drawn from
   ``--seed``): SIGKILLs of the process groups of random workers — gpu, cpu, stitch,
   webhook, beat and the dispatcher, each at least once — a Redis restart that keeps
   nothing, a Postgres restart, the S3 endpoint refusing connections for ``--s3-down-s``.
   Meanwhile a client polls the api.

Passes when every job succeeds; every file is byte-identical to the fault-free run's; each
webhook event arrives exactly once; the api answered nothing 5xx but 503 with Retry-After, and
a 503 only while a dependency was down (or within GRACE_S of its return). Prints the faults,
the jobs and the verdict; exits 1 on failure. ``--small`` is the e2e suite's shorter run.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
from faults import Hooks, PostgresCluster, RedisServer, TcpProxy

from workers.farm_processes import free_port
from workers.farm_state import read_status

GRACE_S = 10.0  # a 503 this long after a dependency is back still counts as its fault's
KINDS = ("gpu-worker", "cpu-worker", "stitch-worker", "webhook-worker", "beat", "dispatcher")
SAMPLE = Path(__file__).resolve().parents[1] / "shared" / "samples" / "sample.md"


def workload(small: bool) -> list[dict]:
    """The jobs: a seeded request each (the webhook URL is added per run)."""
    story = SAMPLE.read_text()
    paragraphs = [p for p in story.split("\n\n") if not p.startswith("#")]
    chapters = "\n\n".join(f"# Part {n}\n\n{p}" for n, p in enumerate(paragraphs, 1))
    jobs = [
        {"text": chapters, "preset": "audiobook", "title": "Parts", "seed": 1},
        {"text": story, "format": "mp3", "seed": 2},
        {"text": " ".join(paragraphs[:3]), "format": "opus", "voice": "leo", "seed": 3},
        {"text": paragraphs[-1], "format": "flac", "seed": 4},
    ]
    return jobs[1:3] if small else jobs


class Chaos:
    def __init__(self, root: Path, seed: int) -> None:
        self.root, self.rng = root, random.Random(seed)
        self.pg = PostgresCluster(root / "pg", free_port())
        self.redis = RedisServer(free_port())
        self.s3_port, self.proxy = free_port(), TcpProxy(free_port(), 0)
        self.proxy.target_port = self.s3_port
        self.api_port, self.state = free_port(), root / "farm"
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
        threading.Thread(target=self.hooks.serve_forever, daemon=True).start()
        self.faults: list[tuple[float, float, str]] = []  # (start, end, what)
        self.calls: list[tuple[float, str, int, str | None]] = []  # (at, path, status, RA)
        self.t0 = time.monotonic()

    # --- the farm ---------------------------------------------------------------------------

    def start(self) -> None:
        self.pg.start()
        self.redis.start()
        self.proxy.up()
        self.env = {
            **os.environ,
            "LYRE_DATABASE__URL": self.pg.url,
            "LYRE_REDIS__URL": self.redis.url,
            "LYRE_REDIS__KEY_PREFIX": "lyre-chaos:",
            "LYRE_STORAGE__ENDPOINT_URL": f"http://127.0.0.1:{self.proxy.listen_port}",
            "LYRE_ENGINE": "espeak",
            "LYRE_CHUNKING__MAX_CHARS": "200",
            "LYRE_FARM__LEASE_S": "10",
            "LYRE_FARM__RECONCILE_EVERY_S": "2",
            "LYRE_WEBHOOKS__BASE_DELAY_S": "0.5",
            "LYRE_WEBHOOKS__ALLOWLIST": '["127.0.0.0/8"]',
            "LYRE_FLOWER__BASIC_AUTH": "ops:chaos",
            "OMP_NUM_THREADS": "1",
        }
        ports = (
            "--api-port",
            self.api_port,
            "--s3-port",
            self.s3_port,
            "--flower-port",
            free_port(),
        )
        self._farmctl("up", *map(str, ports))
        key = subprocess.run(
            [sys.executable, "-m", "cli.main", "keys", "create", "--tenant", "chaos"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.auth = {"Authorization": f"Bearer {key}"}

    def _farmctl(self, *args: str) -> None:
        argv = [sys.executable, "-m", "workers.farmctl", *args[:1], "--state-dir", str(self.state)]
        subprocess.run([*argv, *args[1:]], env=self.env, check=True)

    def stop(self) -> None:
        """Everything this run started, each step whatever became of the others."""
        steps = (lambda: self._farmctl("down"), self.hooks.shutdown, self.proxy.down)
        for step in (*steps, self.redis.stop, self.pg.stop):
            try:
                step()
            except Exception as exc:  # report it, and go on stopping the rest
                print(f"while stopping: {exc!r}", file=sys.stderr)

    def processes(self) -> dict[str, dict]:
        """Each process as the supervisor sees it (``workers/supervisor.py`` describes it)."""
        status = read_status(self.state)
        assert status is not None, "the supervisor wrote no status"
        return status["processes"]

    def pids(self) -> dict[str, int]:
        """The running processes."""
        return {n: p["pid"] for n, p in self.processes().items() if p["state"] == "running"}

    def restarts(self) -> dict[str, int]:
        return {name: p["restarts"] for name, p in self.processes().items()}

    # --- the api, as a client sees it -------------------------------------------------------

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """A request; a 503 is waited out for its Retry-After and tried again."""
        while True:
            response = httpx.request(
                method, self.api + path, headers=self.auth, timeout=60, **kwargs
            )
            ra = response.headers.get("retry-after")
            self.calls.append((time.monotonic(), path, response.status_code, ra))
            if response.status_code != 503:
                return response
            time.sleep(float(ra or 1))

    def submit(self, job: dict, tag: str) -> str:
        hook = f"http://127.0.0.1:{self.hooks.server_port}/{tag}"
        response = self.call("POST", "/v1/jobs", json={**job, "webhook_url": hook})
        response.raise_for_status()
        return response.json()["id"]

    def wait(self, job_ids: list[str], timeout: float = 900) -> dict[str, dict]:
        done: dict[str, dict] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(job_ids) and time.monotonic() < deadline:
            for job_id in set(job_ids) - set(done):
                job = self.call("GET", f"/v1/jobs/{job_id}").json()
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    done[job_id] = job
            time.sleep(0.5)
        return done

    def files(self, job_id: str) -> dict[str, str]:
        """Each output's sha256, by kind, chapter and format."""
        job = self.call("GET", f"/v1/jobs/{job_id}").json()
        return {
            f"{o['kind']}:{o.get('chapter') or ''}:{o['format']}": hashlib.sha256(
                httpx.get(o["url"], timeout=60).raise_for_status().content
            ).hexdigest()
            for o in job["outputs"]
        }

    # --- faults -----------------------------------------------------------------------------

    def schedule(self, kills: int, s3_down_s: float) -> list[tuple[str, float]]:
        """Every kind killed once, the rest at random, and the three outages, shuffled."""
        kinds = list(KINDS) + [self.rng.choice(KINDS) for _ in range(kills - len(KINDS))]
        faults = [(f"kill {kind}", 0.0) for kind in kinds]
        faults += [("restart redis", 0.0), ("restart postgres", 0.0), ("s3 down", s3_down_s)]
        self.rng.shuffle(faults)
        return faults

    def inject(self, faults: list[tuple[str, float]], gap_s: float) -> None:
        for what, hold_s in faults:
            time.sleep(self.rng.uniform(0.2, gap_s))
            start = time.monotonic()
            if what.startswith("kill"):
                name = what.split()[1]
                while name not in self.pids():  # still backing off from its last death
                    time.sleep(0.2)
                os.killpg(self.pids()[name], signal.SIGKILL)
            elif what == "restart redis":
                self.redis.restart()
            elif what == "restart postgres":
                self.pg.restart()
            else:
                self.proxy.down()
                time.sleep(hold_s)
                self.proxy.up()
            self.faults.append((start, time.monotonic(), what))
            print(f"  {start - self.t0:7.1f} s  {what}", flush=True)

    def run(self, jobs: list[dict], faults=(), gap_s: float = 0.0) -> list[tuple[int, dict]]:
        """The whole workload at once, again and again while faults are being injected (at
        least once through); each job's workload index and its final state."""
        injector = threading.Thread(target=self.inject, args=(list(faults), gap_s))
        injector.start()
        results: list[tuple[int, dict]] = []
        while not results or injector.is_alive():
            batch = {self.submit(job, f"w{w}"): w for w, job in enumerate(jobs)}
            results += [(batch[job_id], job) for job_id, job in self.wait(list(batch)).items()]
        injector.join()
        return results

    def events(
        self, job_ids: set[str], expected: int, settle_s: float = 3.0, timeout: float = 120
    ) -> list[tuple]:
        """The deliveries for these jobs, once ``expected`` distinct events have arrived and
        ``settle_s`` more have passed (a doubled one would come then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Hooks.lock:
                got = [d for d in Hooks.received if d[1] in job_ids]
            if len({d[0] for d in got}) >= expected:
                break
            time.sleep(0.2)
        time.sleep(settle_s)
        with Hooks.lock:
            return [d for d in Hooks.received if d[1] in job_ids]


def verdict(chaos: Chaos, reference: dict[int, tuple[dict, dict, list]], results) -> list[str]:
    """What went wrong, if anything."""
    problems = []
    for w, job in results:
        if job["status"] != "succeeded":
            problems.append(f"job {job['id']} (workload {w}) {job['status']}: {job['error']}")
        elif chaos.files(job["id"]) != reference[w][1]:
            problems.append(f"job {job['id']} (workload {w}): files differ from the fault-free run")
    ids = {job["id"] for _, job in results}
    want = {job["id"]: sorted(reference[w][2]) for w, job in results}
    got = chaos.events(ids, sum(len(types) for types in want.values()))
    for delivery_id in {d[0] for d in got}:
        if (n := sum(d[0] == delivery_id for d in got)) > 1:
            problems.append(f"webhook {delivery_id} delivered {n} times")
    for job_id, types in want.items():
        seen = sorted(t for i, j, t in {(i, j, t) for i, j, t in got} if j == job_id)
        if seen != types:
            problems.append(f"job {job_id}: webhook events {seen}, expected {types}")
    outages = [(s, e + GRACE_S) for s, e, what in chaos.faults if not what.startswith("kill")]
    for at, path, status, ra in chaos.calls:
        late = not any(s <= at <= e for s, e in outages)
        if status >= 500 and (status != 503 or ra is None or late):
            problems.append(f"{path} answered {status} at {at - chaos.t0:.1f} s (Retry-After {ra})")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=random.randrange(1 << 30))
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--s3-down-s", type=float, default=30.0)
    parser.add_argument("--small", action="store_true", help="the e2e suite's shorter run")
    args = parser.parse_args()
    if args.small:
        args.kills, args.s3_down_s = len(KINDS), min(args.s3_down_s, 5.0)
    jobs = workload(args.small)
    with tempfile.TemporaryDirectory(prefix="lyre-chaos-") as root:
        chaos = Chaos(Path(root), args.seed)
        print(f"chaos seed {args.seed}: starting the farm in {root}", flush=True)
        try:
            chaos.start()
            return report(chaos, jobs, args)
        finally:
            chaos.stop()


def report(chaos: Chaos, jobs: list[dict], args) -> int:
    started = time.monotonic()
    clean = chaos.run(jobs)
    took = time.monotonic() - started
    # the fault-free run's events, to compare with (doubles are looked for in the chaos run's)
    events = chaos.events({job["id"] for _, job in clean}, len(clean), settle_s=0)
    reference = {
        w: (job, chaos.files(job["id"]), [t for _, j, t in events if j == job["id"]])
        for w, job in clean
    }
    print(f"fault-free run: {len(clean)} jobs in {took:.1f} s", flush=True)
    faults = chaos.schedule(args.kills, args.s3_down_s)
    gap = max(1.0, 2 * took / len(faults))  # the faults last about two fault-free runs
    gap = min(gap, 2.0) if args.small else gap
    print(f"chaos run: {len(faults)} faults, one every 0.2-{gap:.1f} s:", flush=True)
    results = chaos.run(jobs, faults, gap)
    problems = verdict(chaos, reference, results)
    print(f"\njobs ({len(results)}):")
    for w, job in results:
        took = datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(
            job["created_at"]
        )
        chunks = job["progress"]["chunks_total"]
        print(f"  {job['id']}  workload {w}  {job['status']:9}  {chunks:2} chunks  {took}")
    statuses = Counter(status for _, _, status, _ in chaos.calls)
    print(f"api: {len(chaos.calls)} requests, by status {dict(sorted(statuses.items()))}")
    print(f"restarts by the supervisor: {chaos.restarts()}")
    print("\nverdict: " + ("PASS" if not problems else "FAIL"))
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
