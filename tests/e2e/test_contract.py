"""The api's OpenAPI document tells the truth: schemathesis runs against the running api (uvicorn,
started as the farm starts it, with its database, Redis and S3; no workers) with every check
and every phase, its configuration in tests/e2e/schemathesis.toml. A small budget here; `make
fuzz` runs the same test with a large one (LYRE_FUZZ_EXAMPLES) and a new seed each time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import services_for
from tests.e2e.conftest import RunningFarm
from tests.services import forget_redis_keys
from workers.farm_processes import free_port

CONFIG = Path(__file__).with_name("schemathesis.toml")
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("LYRE_FUZZ_EXAMPLES", "5"))  # cases per operation and phase
# The same cases at each run of the suite; `make fuzz` draws new ones (its summary shows the seed)
SEED = os.environ.get("LYRE_FUZZ_SEED", "1")


@pytest.fixture(scope="module")
def api(farm_env, tmp_path_factory):
    """The api alone, its requests not rate-limited (the fuzzer's would be), its speech and
    voice samples given up on quickly (no worker makes them)."""
    with services_for(farm_env):
        env = {
            **os.environ,
            **farm_env,
            "API_PORT": str(free_port()),
            "LYRE_FLOWER__PORT": str(free_port()),
            "LYRE_ENGINE": "espeak",
            "LYRE_LIMITS__REQUESTS_PER_S": "0",
            "LYRE_SPEECH__POLL_S": "0.01",
            "LYRE_SPEECH__STALL_S": "0.02",
        }
        running = RunningFarm(env, tmp_path_factory.mktemp("contract"))
        try:
            running.start("api")
            yield running
        finally:
            running.stop_all()
            forget_redis_keys()


@pytest.mark.slow
def test_the_api_answers_as_its_openapi_document_says(api, tmp_path):
    key = api.headers["Authorization"].removeprefix("Bearer ")
    env = {
        **os.environ,
        "LYRE_CONTRACT_KEY": key,
        "HYPOTHESIS_STORAGE_DIRECTORY": str(tmp_path / "hypothesis"),
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",  # a job's file as the types it may be
        "PYTHONPATH": str(ROOT),
    }
    argv = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{api.api}/openapi.json",
        "--no-color",
        f"--max-examples={EXAMPLES}",
        "--workers=1",
        f"--seed={SEED}",
        "--request-timeout=10",
    ]
    ran = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True)
    print(ran.stdout[-5_000:])  # the run's summary, for `make fuzz` (pytest -s)
    assert ran.returncode == 0, ran.stdout[-30_000:] + ran.stderr[-5_000:]
