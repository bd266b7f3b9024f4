"""bench/chaos.py's shorter run: each kind of worker SIGKILLed once at a random moment, Redis
restarted empty, Postgres restarted, the S3 endpoint refusing connections for 5 s, while two
seeded jobs run on the supervised native farm; every job succeeds with files byte-identical to
a fault-free run's, each webhook arrives once, and the api answers no 5xx but a 503 during an
outage. The farm, its Postgres, Redis and S3 are the bench's own (nothing of this session's)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

CHAOS = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


def test_jobs_survive_a_kill_of_every_kind_and_each_dependency_going_away():
    seed = random.randrange(1 << 30)
    run = subprocess.run(
        [sys.executable, str(CHAOS), "--small", "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, f"chaos seed {seed}:\n{run.stdout}\n{run.stderr[-4000:]}"
    assert "verdict: PASS" in run.stdout
