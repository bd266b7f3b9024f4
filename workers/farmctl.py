"""Start, stop and show the native farm: ``python -m workers.farmctl up|down|status``.

``up`` starts the farm's supervisor (``workers.supervisor``: it starts the processes in order
and restarts any that exits) unless one already runs for the state dir, waits until every
process runs, and says what was already running and what it started. ``down`` stops the
supervisor, then every process. ``status`` shows each process's state, pid, uptime, restarts
and last exit. The state dir (``.farm/`` unless ``--state-dir``) holds logs, pid files and the
supervisor's view, ``supervisor.json``.

What starts one process (``processes``, ``start``, ``wait_healthy``, …) is
``workers.farm_processes``; what the supervisor and this command both read of the farm's state
is ``workers.farm_state``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workers.farm_processes import (
    FARM_DIR,
    Process,
)
from workers.farm_state import (
    DEFAULT_PLAN,
    describe_exit,
    farm_pid,
    plan_of,
    read_status,
    stop_groups,
    stop_process,
    supervisor_pid,
)


class FarmDidNotComeUp(Exception):
    """The farm did not come up."""

    def __init__(self, what: str, log: Path) -> None:
        super().__init__(what)
        self.log = log


def up(args: argparse.Namespace) -> int:
    state_dir = args.state_dir.resolve()
    spawned = None if supervisor_pid(state_dir) else spawn_supervisor(state_dir, args)
    try:
        view = await_farm(state_dir, spawned, args.timeout)
    except FarmDidNotComeUp as failure:
        print(f"farm up failed: {failure}; the end of {failure.log}:", file=sys.stderr)
        print(tail(failure.log), file=sys.stderr)
        print("(the supervisor goes on restarting what exits; down stops it all)", file=sys.stderr)
        return 1
    report(view, state_dir, fresh=spawned is not None and view["supervisor"]["pid"] == spawned.pid)
    return 0


def engine_concurrency() -> int:
    """The gpu worker's concurrency for the farm's engine (imported here alone: ``status`` and
    ``down`` answer without loading the settings)."""
    from shared.infra.settings import get_settings
    from shared.speech.seats import gpu_concurrency

    return gpu_concurrency(get_settings())


def spawn_supervisor(state_dir: Path, args: argparse.Namespace) -> subprocess.Popen:
    """Start the supervisor in its own session: it outlives this command and its terminal."""
    state_dir.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "workers.supervisor", "--state-dir", str(state_dir)]
    argv += ["--api-port", str(args.api_port), "--s3-port", str(args.s3_port)]
    threads = args.gpu_concurrency or engine_concurrency()
    argv += ["--flower-port", str(args.flower_port), "--gpu-concurrency", str(threads)]
    argv += ["--plan", args.plan]
    with open(state_dir / "supervisor.log", "ab") as log:  # the child keeps its own
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def await_farm(state_dir: Path, spawned: subprocess.Popen | None, timeout: float) -> dict:
    """The supervisor's view once every process is up; FarmDidNotComeUp if the supervisor
    exits, a process exits meanwhile (a restart would only hide it) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    baseline: dict[str, int] | None = None
    while True:
        pid = supervisor_pid(state_dir)
        if pid is None and (spawned is None or spawned.poll() is not None):
            raise FarmDidNotComeUp("the supervisor exited", state_dir / "supervisor.log")
        view = read_status(state_dir)
        if pid is not None and view is not None and view["supervisor"]["pid"] == pid:
            procs = view["processes"]
            if baseline is None:  # what a supervisor this command started saw exit all counts
                ours = spawned is not None and pid == spawned.pid
                baseline = {name: 0 if ours else p["restarts"] for name, p in procs.items()}
            for name, p in procs.items():
                if p["restarts"] > baseline[name]:
                    what = f"{name} exited ({describe_exit(p['last_exit'])})"
                    raise FarmDidNotComeUp(what, state_dir / f"{name}.log")
            waiting = [f"{name} {p['state']}" for name, p in procs.items() if not is_up(p)]
            if not waiting:
                return view
            if time.monotonic() > deadline:
                what = f"not up after {timeout:g} s: {', '.join(waiting)}"
                raise FarmDidNotComeUp(what, state_dir / "supervisor.log")
        time.sleep(0.2)


def is_up(process: dict[str, Any]) -> bool:
    return process["state"] in ("running", "done")


def tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(f"  {line}" for line in text.splitlines()[-lines:])


def report(view: dict, state_dir: Path, fresh: bool) -> None:
    procs = view["processes"]
    supervisor = view["supervisor"]
    if fresh:
        print(f"started the supervisor (pid {supervisor['pid']}; log {state_dir}/supervisor.log)")
        adopted = [name for name, p in procs.items() if p["adopted"]]
        started = [name for name, p in procs.items() if not p["adopted"]]
        print(f"already running: {', '.join(adopted) or 'nothing'}")
        print(f"started: {', '.join(started) or 'nothing'}")
    else:
        print(f"the supervisor was already running (pid {supervisor['pid']}): started nothing")
        print(f"already running: {', '.join(procs)}")
    options = supervisor["options"]
    api, flower = options["api_port"], options["flower_port"]
    print(f"farm up: api http://127.0.0.1:{api}/docs, flower http://127.0.0.1:{flower}, ", end="")
    print(f"logs in {state_dir}/")


def down(state_dir: Path, grace: float) -> None:
    pid = supervisor_pid(state_dir)
    if pid is not None:
        stop_process(pid)  # first: it would restart what is stopped next
        print(f"stopped the supervisor (pid {pid})")
    specs = plan_of(state_dir)
    running = {spec.name: farm_pid(spec, state_dir) for spec in specs}
    stop_groups([pid for pid in running.values() if pid is not None], grace)
    for spec in specs:
        (state_dir / f"{spec.name}.pid").unlink(missing_ok=True)
    stopped = [name for name, pid in running.items() if pid is not None]
    print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def status(state_dir: Path) -> int:
    """Print each process's state; 0 if every one runs, 3 if none does, 1 otherwise."""
    pid = supervisor_pid(state_dir)
    view = read_status(state_dir)
    live = pid is not None and view is not None and view["supervisor"]["pid"] == pid
    print(f"supervisor: {f'running (pid {pid})' if pid else 'not running'}")
    print(f"{'process':15} {'state':12} {'pid':>7} {'uptime':>8} {'restarts':>8}  last exit")
    running, services = 0, 0
    for spec in plan_of(state_dir):
        row = view["processes"][spec.name] if live and view else unsupervised(spec, state_dir)
        services += not spec.one_shot
        running += not spec.one_shot and row["state"] == "running"
        up_for = uptime(row["started_at"]) if row["pid"] else "-"
        last_exit = "-" if row["restarts"] in (0, "-") else describe_exit(row["last_exit"])
        print(
            f"{spec.name:15} {row['state']:12} {row['pid'] or '-':>7} {up_for:>8} "
            f"{row['restarts']:>8}  {last_exit}"
        )
    return 0 if running == services else 3 if running == 0 else 1


def unsupervised(spec: Process, state_dir: Path) -> dict[str, Any]:
    """A process's row from its pid file alone, when no supervisor runs."""
    pid = None if spec.one_shot else farm_pid(spec, state_dir)
    started_at = (state_dir / f"{spec.name}.pid").stat().st_mtime if pid else None
    state = "running" if pid else "-" if spec.one_shot else "stopped"
    return {"state": state, "pid": pid, "started_at": started_at, "restarts": "-"}


def uptime(started_at: float) -> str:
    seconds = int(time.time() - started_at)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.farmctl")
    actions = parser.add_subparsers(dest="action", required=True)
    start_farm = actions.add_parser("up", help="start what is not running, supervised")
    actions.add_parser("down", help="stop the supervisor, then every process")
    actions.add_parser("status", help="each process's state; exit 0 all up, 1 some, 3 none")
    for action in actions.choices.values():
        action.add_argument("--state-dir", type=Path, default=FARM_DIR)
    start_farm.add_argument("--api-port", type=int, default=8000)
    start_farm.add_argument("--s3-port", type=int, default=9000)
    start_farm.add_argument("--flower-port", type=int, default=5555)
    start_farm.add_argument(
        "--gpu-concurrency",
        type=int,
        help="chunks the gpu worker holds (default: the engine's, as compose.yaml runs it: "
        "max_num_seqs and an eighth for a batching engine, such as LYRE_ENGINE=simulated; 2 "
        "for one that makes a chunk at a time)",
    )
    start_farm.add_argument("--plan", default=DEFAULT_PLAN, help="module:function (tests)")
    start_farm.add_argument("--timeout", type=float, default=180, help="seconds to wait")
    actions.choices["down"].add_argument("--grace", type=float, default=30)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.action == "up":
        sys.exit(up(args))
    elif args.action == "down":
        down(args.state_dir.resolve(), args.grace)
    else:
        sys.exit(status(args.state_dir.resolve()))


if __name__ == "__main__":
    main()
