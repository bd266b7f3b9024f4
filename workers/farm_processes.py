"""The native farm's processes: their commands, starting one, awaiting its health.

The commands, and the healthchecks the supervisor probes them with, are the ones compose.yaml
and k8s/ run (tests/e2e/test_deploy.py compares them); ``workers.farmctl`` (through the
supervisor), the end-to-end tests and the benches start them from here. Logs and pid files go
to ``.farm/``. The S3 endpoint is moto's S3 service (``workers.local_s3``; MinIO is not
installable here); the database is created and migrated if it is missing.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from workers.liveness import Liveness

FARM_DIR = Path(".farm")


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    health_url: str | None = None  # polled until it answers 200 (or 401 behind basic auth)
    env: tuple[tuple[str, str], ...] = ()  # settings of this process alone
    one_shot: bool = False  # a step that runs to its end (compose's migrate), not a service
    liveness: Liveness | None = None  # the supervisor's probes while it runs


def _healthcheck(*check: str, grace_s: float = 30.0) -> Liveness:
    """The healthcheck compose.yaml runs for the service, as the supervisor's liveness probe."""
    return Liveness((sys.executable, "-m", "workers.healthcheck", *check), grace_s=grace_s)


def processes(
    api_port: int = 8000,
    s3_port: int = 9000,
    flower_port: int = 5555,
    gpu_concurrency: int = 2,  # chunks in flight: a CPU engine here (compose.yaml's cpu profile)
    state_dir: Path = FARM_DIR,
) -> list[Process]:
    bin_dir = Path(sys.executable).parent
    celery = [str(bin_dir / "celery"), "-A", "workers.app"]
    worker = [*celery, "worker", "--loglevel=INFO", "--without-mingle", "--without-gossip"]
    return [
        Process(
            "s3",
            [sys.executable, "-m", "workers.local_s3", "--port", str(s3_port)],
            f"http://127.0.0.1:{s3_port}/",  # ListBuckets
            liveness=_healthcheck("http", f"http://127.0.0.1:{s3_port}/"),
        ),
        Process(
            "api",
            [
                str(bin_dir / "uvicorn"),
                "api.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
            ],
            f"http://127.0.0.1:{api_port}/healthz",
            liveness=_healthcheck("http", f"http://127.0.0.1:{api_port}/healthz"),
        ),
        Process(
            "gpu-worker",
            [
                *worker,
                "-Q",
                "gpu",
                "--pool",
                "threads",
                "--concurrency",
                str(gpu_concurrency),
                "-n",
                "gpu@%h",
            ],
            # its engine is built before it answers: weights load, CUDA graphs compile
            liveness=_healthcheck("engine", "gpu@%h", grace_s=600),
        ),
        Process(
            "cpu-worker",
            [*worker, "-Q", "cpu", "--concurrency", "2", "-n", "cpu@%h"],
            liveness=_healthcheck("worker", "cpu@%h"),
        ),
        Process(
            "stitch-worker",
            [*worker, "-Q", "stitch", "--concurrency", "2", "-n", "stitch@%h"],  # as compose
            liveness=_healthcheck("worker", "stitch@%h"),
        ),
        Process(
            "webhook-worker",
            [
                *worker,
                "-Q",
                "webhooks",
                "--pool",
                "threads",
                "--concurrency",
                "8",
                "-n",
                "webhooks@%h",
            ],
            liveness=_healthcheck("worker", "webhooks@%h"),
        ),
        Process(
            "dispatcher",
            [sys.executable, "-m", "workers.dispatcher"],
            liveness=_healthcheck("dispatcher"),
        ),
        Process(
            "beat",
            [*celery, "beat", "--loglevel=INFO", f"--schedule={state_dir / 'beat-schedule'}"],
            liveness=_healthcheck("beat", grace_s=120),  # as k8s: its first reconcile comes later
        ),
        Process(
            "flower",
            [sys.executable, "-m", "workers.flower"],
            f"http://127.0.0.1:{flower_port}/healthcheck",
            env=(("LYRE_FLOWER__PORT", str(flower_port)),),
            liveness=_healthcheck("http", f"http://127.0.0.1:{flower_port}/healthcheck"),
        ),
    ]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def farm_environment(s3_port: int = 9000) -> dict[str, str]:
    """Settings the native farm needs beyond the defaults (callers' values win)."""
    defaults = {
        "LYRE_STORAGE__ENDPOINT_URL": f"http://127.0.0.1:{s3_port}",
        "LYRE_STORAGE__ACCESS_KEY_ID": "lyre",
        "LYRE_STORAGE__SECRET_ACCESS_KEY": "lyre-secret",
        "LYRE_WEBHOOKS__ALLOWLIST": '["127.0.0.0/8"]',
    }
    return {**defaults, **os.environ}


def start(process: Process, env: dict[str, str], state_dir: Path = FARM_DIR) -> subprocess.Popen:
    state_dir.mkdir(exist_ok=True)
    with open(state_dir / f"{process.name}.log", "ab") as log:  # the child keeps its own
        child = subprocess.Popen(
            process.argv,
            env={**env, **dict(process.env)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    (state_dir / f"{process.name}.pid").write_text(str(child.pid))
    return child


def wait_healthy(process: Process, child: subprocess.Popen, timeout: float = 60) -> None:
    if process.health_url is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"{process.name} exited with {child.returncode}")
        if answers(process.health_url):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{process.name} did not become healthy in {timeout:.0f} s")


def answers(health_url: str, timeout: float = 1) -> bool:
    """Whether the health URL answers 200 (or 401: Flower's, behind basic auth)."""
    try:
        return httpx.get(health_url, timeout=timeout).status_code in (200, 401)
    except httpx.HTTPError:
        return False


def prepare(env: dict[str, str]) -> None:
    """Create the database if missing, migrate it, and create the bucket."""
    subprocess.run([sys.executable, "-m", "workers.bootstrap"], env=env, check=True)


def farm_plan(
    api_port: int = 8000,
    s3_port: int = 9000,
    flower_port: int = 5555,
    gpu_concurrency: int = 2,
    state_dir: Path = FARM_DIR,
) -> list[Process]:
    """What the supervisor runs, in order: s3, then the bootstrap (compose's migrate step), then
    the rest."""
    s3, *rest = processes(api_port, s3_port, flower_port, gpu_concurrency, state_dir)
    bootstrap = Process("prepare", [sys.executable, "-m", "workers.bootstrap"], one_shot=True)
    return [s3, bootstrap, *rest]
