"""A gpu worker whose engine dies hands its chunks back and exits for its supervisor to
restart it; its healthcheck fails while the engine is dead. The GPU backend is the only
stand-in (tests/e2e/dying_gpu.py); the worker, the Orpheus engine around the backend, the
queue, Postgres and the other workers are real."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid

import pytest

from shared.infra.db import session_scope
from shared.infra.models import Job
from tests.e2e.conftest import assert_complete, chunk_rows
from workers import farm_processes
from workers.engine_host import ENGINE_DEAD_EXIT

pytestmark = pytest.mark.slow

SIX_CHUNKS = "\n\n".join(
    f"Paragraph {i} has words enough for a chunk of its own." for i in range(6)
)


def dying_worker(farm, death: str, node: str) -> farm_processes.Process:
    spec = farm.specs["gpu-worker"]
    argv = [a if a != "workers.app" else "tests.e2e.dying_gpu" for a in spec.argv]
    argv[argv.index("-n") + 1] = node
    return farm_processes.Process(node.split("@")[0], argv, env=(("LYRE_TEST_DEATH", death),))


def healthcheck(farm, node: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workers.healthcheck", "engine", node],
        env=farm.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_engine_that_dies_mid_batch_hands_its_chunks_back(api_only):
    farm = api_only
    job = farm.submit(SIX_CHUNKS, format="wav")
    spec = dying_worker(farm, "batch:3", "dying@%h")
    child = farm_processes.start(spec, farm.env, farm.state_dir)
    assert child.wait(timeout=120) == ENGINE_DEAD_EXIT  # for its supervisor to restart it
    rows = chunk_rows(job["id"])
    assert len(rows) == 6 and {r.status for r in rows} == {"pending"}
    assert sum(r.attempts for r in rows) >= 3  # the dead worker did take some
    with session_scope() as session:
        assert session.get(Job, uuid.UUID(job["id"])).status != "failed"
    # No reconciler runs here: only messages handed back to the queue can finish the job.
    workers = ("gpu-worker", "cpu-worker", "stitch-worker")
    for name in workers:
        farm.start(name)
    try:
        done = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"))
        assert done["status"] == "succeeded", done["error"]
        assert_complete(farm, done)
    finally:  # the module's next tests start workers of their own
        for name in workers:
            farm.kill(name, signal.SIGTERM)


def test_the_healthcheck_fails_while_the_engine_is_dead(api_only):
    farm = api_only
    node = "idler@127.0.0.1"
    child = farm_processes.start(dying_worker(farm, "idle:4", node), farm.env, farm.state_dir)
    try:
        deadline = time.monotonic() + 60
        while (check := healthcheck(farm, node)).returncode != 0:  # the engine is built
            assert time.monotonic() < deadline, check.stderr
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while (check := healthcheck(farm, node)).returncode == 0:  # until it dies
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert check.returncode == 1 and "engine dead" in check.stderr
        assert child.wait(timeout=60) == ENGINE_DEAD_EXIT  # and the worker goes
    finally:
        if child.poll() is None:
            child.kill()


def test_a_worker_whose_engine_cannot_be_built_exits_before_taking_chunks(api_only, tmp_path):
    farm = api_only
    job = farm.submit(SIX_CHUNKS, format="wav")
    spec = farm.specs["gpu-worker"]
    env = {**farm.env, "LYRE_ENGINE": "orpheus", "LYRE_ORPHEUS__MODEL": str(tmp_path / "none")}
    child = farm_processes.start(spec, env, farm.state_dir)
    assert child.wait(timeout=120) == ENGINE_DEAD_EXIT
    assert {r.attempts for r in chunk_rows(job["id"])} == {0}  # it took none
    log = (farm.state_dir / "gpu-worker.log").read_text()
    assert "the engine could not be built" in log
