"""The native farm heals itself: the supervisor (``workers.supervisor``) and ``farmctl up``,
``status`` and ``down`` run as processes on a temporary state dir. Small real commands stand in
for the farm's (tests/e2e/supervised.py), except in the last test, which brings up the real farm
on free ports with its own database and Redis prefix."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import REDIS_TEST_URL, drop_database, forget_redis_keys
from workers.farm_processes import free_port
from workers.farm_state import command_line, group_members, read_status, start_ticks

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def farmctl(action: str, state_dir: Path, *args: str, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "workers.farmctl", action, "--state-dir", str(state_dir), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def up(state_dir: Path, plan: str, port: int) -> subprocess.CompletedProcess:
    """``farmctl up`` with a plan of tests/e2e/supervised.py, its web server on ``port``."""
    plan = f"tests.e2e.supervised:{plan}"
    return farmctl("up", state_dir, "--api-port", str(port), "--plan", plan)


def wait_until(what: Callable[[], Any], timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, f"{what} never held"
        time.sleep(0.05)
    return value


def processes(state_dir: Path) -> dict[str, dict]:
    view = read_status(state_dir)
    assert view is not None
    return view["processes"]


@pytest.fixture()
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A farm's state dir; whatever the test left running there is stopped."""
    yield tmp_path / "farm"
    farmctl("down", tmp_path / "farm", "--grace", "5")


@pytest.fixture()
def supervise(state_dir: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start ``python -m workers.supervisor`` itself, with a plan and its back-off options."""
    started: list[subprocess.Popen] = []

    def run(plan: str, *options: str) -> subprocess.Popen:
        state_dir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "workers.supervisor", "--state-dir", str(state_dir)]
        argv += ["--api-port", str(free_port()), "--plan", f"tests.e2e.supervised:{plan}"]
        with open(state_dir / "supervisor.log", "ab") as log:
            started.append(subprocess.Popen([*argv, *options], cwd=ROOT, stdout=log, stderr=log))
        return started[-1]

    yield run
    for child in started:
        child.terminate()
        child.wait(timeout=10)


def pid_of(state_dir: Path, name: str) -> int | None:
    """The process's pid as the supervisor's view has it; None before the view or the start."""
    view = read_status(state_dir)
    return view["processes"][name]["pid"] if view else None


def starts(path: Path) -> list[float]:
    return [float(line) for line in path.read_text().split()] if path.exists() else []


def delays_logged(state_dir: Path, name: str) -> list[float]:
    lines = (state_dir / "supervisor.log").read_text().splitlines()
    return [
        float(line.split(" in ")[-1].removesuffix(" s"))
        for line in lines
        if f" {name}: " in line and "; restart " in line
    ]


def test_a_process_that_exits_is_restarted_after_growing_delays(state_dir, supervise):
    supervise("crashing", "--backoff-initial", "0.2", "--backoff-cap", "3.2")
    wait_until(lambda: len(starts(state_dir / "crasher.starts")) >= 5)
    times = starts(state_dir / "crasher.starts")
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)][:4]
    assert delays_logged(state_dir, "crasher")[:4] == [0.2, 0.4, 0.8, 1.6]
    for gap, delay in zip(gaps, [0.2, 0.4, 0.8, 1.6], strict=True):
        assert delay <= gap < delay + 1.0, gaps  # the 1 s: a busy machine's start and tick
    wait_until(lambda: len(delays_logged(state_dir, "crasher")) >= 5)  # 3.2 s backing off now
    status = farmctl("status", state_dir)
    assert status.returncode == 1, status.stdout  # the others run
    row = next(line.split() for line in status.stdout.splitlines() if line.startswith("crasher"))
    assert row[:2] == ["crasher", "backing-off"] and row[-3:] == ["5", "status", "3"]
    crasher = processes(state_dir)["crasher"]
    assert crasher["restarts"] == 5 and crasher["last_exit"] == 3
    assert processes(state_dir)["sleeper"]["restarts"] == 0


def test_a_process_that_stayed_up_starts_again_after_the_first_delay(state_dir, supervise):
    """The flapper stays up 0.6 s, longer than the reset: every exit counts as a first. A
    command that is missing is retried as one that exits at once, up to the cap."""
    supervise(
        "flapping", "--backoff-initial", "0.3", "--backoff-reset", "0.5", "--backoff-cap", "0.6"
    )
    wait_until(lambda: min(len(delays_logged(state_dir, n)) for n in ("flapper", "ghost")) >= 3)
    assert delays_logged(state_dir, "flapper")[:3] == [0.3, 0.3, 0.3]
    assert delays_logged(state_dir, "ghost")[:3] == [0.3, 0.6, 0.6]  # it never ran at all
    assert "ghost: could not start ([Errno 2]" in (state_dir / "supervisor.log").read_text()


def test_a_running_process_whose_liveness_probes_fail_is_killed_and_restarted(state_dir, supervise):
    """Probed every 0.2 s from its start: passing, it is left alone; two failures in a row and
    its group is killed, then it is restarted after the back-off; passing again, left alone."""
    state_dir.mkdir(parents=True)
    (state_dir / "alive").touch()
    supervise("wedged", "--backoff-initial", "2")  # time to make it pass again before it restarts
    first = wait_until(lambda: pid_of(state_dir, "wedged"))
    time.sleep(1.5)  # several probes passed
    assert processes(state_dir)["wedged"] | {"started_at": None} == {
        "pid": first, "state": "running", "restarts": 0, "last_exit": None,
        "started_at": None, "adopted": False,
    }  # fmt: skip
    (state_dir / "alive").unlink()
    wait_until(lambda: processes(state_dir)["wedged"]["restarts"] == 1)
    (state_dir / "alive").touch()
    again = wait_until(lambda: pid_of(state_dir, "wedged"))
    assert again != first and not Path(f"/proc/{first}").exists()
    assert processes(state_dir)["wedged"]["last_exit"] == -signal.SIGKILL
    log = (state_dir / "supervisor.log").read_text()
    assert (
        "wedged: its liveness probe failed 2 times in a row (the last: exit 1); killing it" in log
    )
    time.sleep(1.5)
    assert processes(state_dir)["wedged"]["restarts"] == 1  # alive again: left alone


def test_up_twice_starts_nothing_the_second_time(state_dir):
    port = free_port()
    first = up(state_dir, "steady", port)
    assert first.returncode == 0, first.stderr
    assert "already running: nothing\nstarted: web, once, sleeper" in first.stdout
    pids = {name: p["pid"] for name, p in processes(state_dir).items()}
    second = up(state_dir, "steady", port)
    assert second.returncode == 0, second.stderr
    assert "already running (pid" in second.stdout and "started nothing" in second.stdout
    assert {name: p["pid"] for name, p in processes(state_dir).items()} == pids
    assert (state_dir / "once.runs").read_text() == "ran\n"
    status = farmctl("status", state_dir)
    assert status.returncode == 0, status.stdout
    assert [line.split()[:2] for line in status.stdout.splitlines()[2:]] == [
        ["web", "running"],
        ["once", "done"],
        ["sleeper", "running"],
    ]


def test_a_new_supervisor_adopts_what_the_last_one_left_running(state_dir):
    port = free_port()
    assert up(state_dir, "steady", port).returncode == 0
    before = processes(state_dir)
    supervisor = read_status(state_dir)["supervisor"]["pid"]
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: command_line(supervisor) is None)
    again = up(state_dir, "steady", port)
    assert again.returncode == 0, again.stderr
    assert "already running: web, sleeper\nstarted: once" in again.stdout
    after = processes(state_dir)
    assert [after[n]["pid"] for n in ("web", "sleeper")] == [
        before[n]["pid"] for n in ("web", "sleeper")
    ]
    assert after["web"]["adopted"] and after["sleeper"]["adopted"]


def test_a_pid_file_naming_a_recycled_pid_is_not_adopted(state_dir):
    """A pid file with a start time names the process started then; one without (as
    ``farm_processes.start`` writes) names a process running the same command."""
    state_dir.mkdir(parents=True)
    stranger = subprocess.Popen(["sleep", "300"])
    twin = subprocess.Popen(["sh", "-c", "sleep 600 & wait"], start_new_session=True)
    try:
        (state_dir / "web.pid").write_text(f"{stranger.pid}\n")  # not the web server
        ticks = start_ticks(twin.pid)
        (state_dir / "sleeper.pid").write_text(f"{twin.pid} {ticks - 1}\n")  # started before
        result = up(state_dir, "steady", free_port())
        assert result.returncode == 0, result.stderr
        assert "already running: nothing\nstarted: web, once, sleeper" in result.stdout
        ours = processes(state_dir)
        assert (ours["web"]["pid"], ours["sleeper"]["pid"]) != (stranger.pid, twin.pid)
        assert farmctl("down", state_dir).returncode == 0
        assert stranger.poll() is None and twin.poll() is None  # neither adopted nor stopped
    finally:
        stranger.kill()
        os.killpg(twin.pid, signal.SIGKILL)
        stranger.wait()
        twin.wait()


def test_down_leaves_no_process(state_dir):
    assert up(state_dir, "steady", free_port()).returncode == 0
    view = read_status(state_dir)
    pids = [view["supervisor"]["pid"], view["processes"]["web"]["pid"]]
    pids.append(view["processes"]["sleeper"]["pid"])
    wait_until(lambda: len(group_members(pids[2])) == 2)  # the sleeper's shell and its child
    down = farmctl("down", state_dir)
    assert down.returncode == 0, down.stderr
    assert "stopped the supervisor" in down.stdout and "stopped: web, sleeper" in down.stdout
    assert [command_line(pid) for pid in pids] == [None, None, None]
    assert group_members(pids[1]) == group_members(pids[2]) == []
    assert farmctl("status", state_dir).returncode == 3
    assert json.loads((state_dir / "supervisor.json").read_text())["supervisor"]["stopped_at"]


@pytest.fixture()
def own_services() -> Iterator[dict[str, str]]:
    """Settings for a farm of its own: a database bootstrap creates, a Redis key prefix."""
    name = f"lyre_test_{uuid.uuid4().hex[:12]}"
    database = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    prefix = f"lyre-test-{uuid.uuid4().hex[:12]}:"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LYRE_")}
    yield {
        **env,
        "LYRE_DATABASE__URL": database,
        "LYRE_REDIS__URL": REDIS_TEST_URL,
        "LYRE_REDIS__KEY_PREFIX": prefix,
        "LYRE_ENGINE": "espeak",
        "LYRE_FLOWER__BASIC_AUTH": "ops:s3cret",
        "OMP_NUM_THREADS": "1",
    }
    drop_database(database)
    forget_redis_keys(prefix)


def test_the_real_farm_comes_up_heals_and_goes_down(state_dir, own_services):
    ports = ["--api-port", "--s3-port", "--flower-port"]
    args = [word for option in ports for word in (option, str(free_port()))]
    result = farmctl("up", state_dir, *args, env=own_services)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "started: s3, prepare, api, gpu-worker" in result.stdout
    before = processes(state_dir)
    assert {p["state"] for p in before.values()} == {"running", "done"}
    killed = before["cpu-worker"]["pid"]
    os.killpg(killed, signal.SIGKILL)
    back = wait_until(
        lambda: (
            (p := processes(state_dir)["cpu-worker"])["state"] == "running"
            and p["pid"] != killed
            and p
        )
    )
    assert back["restarts"] == 1 and back["last_exit"] == -signal.SIGKILL
    assert command_line(back["pid"]) is not None
    pids = [p["pid"] for p in processes(state_dir).values() if p["pid"]]
    assert farmctl("down", state_dir, env=own_services).returncode == 0
    assert [pid for pid in pids if group_members(pid)] == []
