"""Small real processes that stand in for the farm's in the supervisor's tests: plans for
``python -m workers.supervisor --plan tests.e2e.supervised:NAME``."""

from __future__ import annotations

import sys
from pathlib import Path

from workers.farm_processes import Process
from workers.liveness import Liveness


def steady(api_port: int, state_dir: Path, **_: object) -> list[Process]:
    """A web server awaited healthy, a one-shot step, then a shell that waits on a sleep."""
    web = [sys.executable, "-m", "http.server", str(api_port), "--bind", "127.0.0.1"]
    return [
        Process("web", web, f"http://127.0.0.1:{api_port}/"),
        Process("once", ["sh", "-c", f"echo ran >> {state_dir / 'once.runs'}"], one_shot=True),
        Process("sleeper", ["sh", "-c", "sleep 600 & wait"]),  # a group of two
    ]


def crashing(api_port: int, state_dir: Path, **_: object) -> list[Process]:
    """The steady plan and a process that exits 3 at once, noting when it started."""
    note = f"date +%s.%N >> {state_dir / 'crasher.starts'}; exit 3"
    return [*steady(api_port, state_dir), Process("crasher", ["sh", "-c", note])]


def flapping(api_port: int, state_dir: Path, **_: object) -> list[Process]:
    """A process that stays up 0.6 s, then exits 1, and one whose command is missing."""
    return [
        Process("flapper", ["sh", "-c", "sleep 0.6; exit 1"]),
        Process("ghost", [str(state_dir / "no-such-command")]),
    ]


def wedged(state_dir: Path, **_: object) -> list[Process]:
    """A process that runs on but whose liveness probe passes only while a file exists (as a
    worker that stops answering its broker would fail its healthcheck)."""
    probe = Liveness(("test", "-e", str(state_dir / "alive")), grace_s=0, period_s=0.2, failures=2)
    return [Process("wedged", ["sh", "-c", "sleep 600 & wait"], liveness=probe)]
