"""What the supervisor and ``farmctl`` both read: which pids are the farm's, the supervisor's
view in ``supervisor.json``, and stopping process groups.

A pid file alone proves nothing: the process may have exited and its pid been given to another.
A pid counts as a farm process only while ``/proc`` shows it alive (not a zombie: nothing may
reap an orphan here) and started when the pid file says (Flower exec()s ``celery flower``, so a
command line can change; a start time cannot), or, in a pid file without a start time, running
the command the farm started.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from workers.farm_processes import Process

STATUS_FILE = "supervisor.json"
SUPERVISOR_MODULE = "workers.supervisor"
DEFAULT_PLAN = "workers.farm_processes:farm_plan"


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the name, or None unless the process is alive
    (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the name in parentheses may hold ")"
    return None if fields[0] in ("Z", "X") else fields


def start_ticks(pid: int) -> int | None:
    """When a live process started, in clock ticks after boot: with its pid, who it is."""
    fields = _stat(pid)
    return int(fields[19]) if fields else None


def command_line(pid: int) -> list[str] | None:
    """The argv of a live process, or None if there is none (or only its zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw.decode(errors="replace").split("\0")[:-1] if _stat(pid) else None


def runs(pid: int, argv: Sequence[str]) -> bool:
    """Whether ``pid`` is alive and running ``argv``.

    A script's shebang puts its interpreter first (``python .venv/bin/celery -A …``).
    """
    words = command_line(pid)
    return words is not None and list(argv) in (words, words[1:])


def read_pid_file(path: Path) -> tuple[int, int | None] | None:
    """The pid and start time a pid file holds (the start time may be missing)."""
    try:
        words = [int(word) for word in path.read_text().split()]
    except (FileNotFoundError, ValueError):
        return None
    return (words[0], words[1] if len(words) > 1 else None) if words else None


def read_pid(path: Path) -> int | None:
    held = read_pid_file(path)
    return held[0] if held else None


def write_pid_file(path: Path, pid: int) -> None:
    """The pid and its start time: a process that exec()s keeps both, a recycled pid has
    another start time."""
    path.write_text(f"{pid} {start_ticks(pid) or ''}".strip() + "\n")


def farm_pid(spec: Process, state_dir: Path) -> int | None:
    """The pid in the process's pid file, if that process still runs: the same start time, or
    where the file has none (``farm_processes.start`` writes the pid alone), the same
    command line."""
    held = read_pid_file(state_dir / f"{spec.name}.pid")
    if held is None:
        return None
    pid, ticks = held
    alive = start_ticks(pid) == ticks if ticks is not None else runs(pid, spec.argv)
    return pid if alive else None


def supervisor_pid(state_dir: Path) -> int | None:
    """The pid of the supervisor of ``state_dir``, if one runs (its pid file names a live
    ``python -m workers.supervisor``)."""
    pid = read_pid(state_dir / "supervisor.pid")
    words = command_line(pid) if pid is not None else None
    if words is None:
        return None
    return (
        pid
        if any(words[i : i + 2] == ["-m", SUPERVISOR_MODULE] for i in range(len(words)))
        else None
    )


def write_status(state_dir: Path, status: dict[str, Any]) -> None:
    """Replace ``supervisor.json`` whole: a reader never sees half a file."""
    temporary = state_dir / f".{STATUS_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(status, indent=1))
    temporary.replace(state_dir / STATUS_FILE)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((state_dir / STATUS_FILE).read_text())
    except FileNotFoundError:
        return None


Plan = Callable[..., list[Process]]


def load_plan(reference: str) -> Plan:
    """The function named ``module:function`` that lists the farm's processes in order."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def plan_of(state_dir: Path) -> list[Process]:
    """The processes of the farm last supervised from ``state_dir`` (the default farm's if
    none was)."""
    status = read_status(state_dir) or {}
    supervisor = status.get("supervisor", {})
    plan = load_plan(supervisor.get("plan", DEFAULT_PLAN))
    return plan(**supervisor.get("options", {}), state_dir=state_dir)


def describe_exit(status: int | None) -> str:
    """An exit status in words (Popen's: negative when a signal killed the process)."""
    if status is None:
        return "status unknown: not the supervisor's child"
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"status {status}"


def stop_process(pid: int, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds; return once gone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while command_line(pid) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if command_line(pid) is None:
            return


def signal_group(pid: int, sig: int) -> bool:
    try:
        os.killpg(pid, sig)
        return True
    except ProcessLookupError:
        return False


def stop_groups(pids: Iterable[int], grace: float) -> None:
    """SIGTERM each group at once (their warm shutdowns overlap), SIGKILL what is left after
    ``grace`` seconds, and wait until the groups are gone."""
    pids = [pid for pid in pids if signal_group(pid, signal.SIGTERM)]
    deadline = time.monotonic() + grace
    while any(group_members(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(group_members(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (not its zombies: they go once reaped)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members
