"""Checks on every chunk through the native farm (api, dispatcher, gpu, cpu and stitch workers
as separate processes): espeak-ng spoils half the first takes, every kind of fault in turn, and
the book comes out with each spoiled chunk made again, none suspect, the same bytes twice."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from shared.checks.faults import fault_for
from shared.farm.seeds import chunk_seed
from shared.infra.checks_settings import FAULT_KINDS, FaultSettings
from tests.e2e.conftest import RunningFarm, chunk_rows

BOOK = """# The Harbour

The boats came in at dusk, one by one, their lamps low over the water. Old Tom counted them
from the harbour wall, as he had done every evening for forty years. Seven boats went out.

Six came back before dark. The seventh, the Mary Rose, was late, and Tom did not go home.

# The Storm

By midnight the wind had turned. Rain came down in sheets, and the sea rose over the
breakwater. Nobody in the village slept. At 3:45 a.m. a light showed off the point.

It was the Mary Rose, her mast gone, rowing in on oars. Dr. Evans met her on the slip.
"""
RATE = 0.5


@pytest.fixture(scope="module")
def faulty_farm(process_env, tmp_path_factory):
    env = {
        **process_env,
        "LYRE_ENGINE": "espeak",
        "LYRE_CHECKS__TAKES": "3",
        "LYRE_FAULTS__RATE": str(RATE),
        "LYRE_CHUNKING__MAX_CHARS": "120",
    }
    running = RunningFarm(env, tmp_path_factory.mktemp("faulty-farm"))
    try:
        running.start_at_once(["api", "dispatcher", "gpu-worker", "cpu-worker", "stitch-worker"])
        yield running
    finally:
        running.stop_all()


def run(farm: RunningFarm) -> tuple[dict, str]:
    job = farm.submit(BOOK, format="flac", seed=2026)
    job = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"), timeout=240)
    assert job["status"] == "succeeded", job["error"]
    url = httpx.get(f"{farm.api}/v1/jobs/{job['id']}/audio", headers=farm.headers).headers[
        "location"
    ]
    return job, hashlib.sha256(httpx.get(url, timeout=30).content).hexdigest()


def test_spoiled_takes_are_made_again_with_the_same_bytes_at_every_run(faulty_farm):
    job, first = run(faulty_farm)
    faults = FaultSettings(rate=RATE, kinds=list(FAULT_KINDS))
    rows = chunk_rows(job["id"])
    spoiled = {
        row.index: kind
        for row in rows
        if (kind := fault_for(faults, chunk_seed(job["id"], row.index, 2026), 0))
    }
    assert len(spoiled) >= 4 and len(set(spoiled.values())) >= 3  # several kinds fell
    for row in rows:
        failed = [t["reasons"] for t in row.takes if t["take"] == 0 and t["reasons"]]
        assert bool(failed) == (row.index in spoiled), (row.index, spoiled.get(row.index))
        assert row.suspect is None and row.take == (1 if row.index in spoiled else 0)
    assert job["checks"] == {"checked": len(rows), "retaken": len(spoiled), "suspects": 0}
    again, second = run(faulty_farm)
    assert again["id"] != job["id"] and second == first
