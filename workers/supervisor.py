"""The native farm's supervisor: ``python -m workers.supervisor --state-dir DIR [options]``.

It does for ``make farm-up`` what compose's ``restart: unless-stopped`` and Kubernetes' pod
restarts do for theirs. It starts the farm's processes in order: s3, healthy; the one-shot
bootstrap (``prepare``, compose's migrate step), to its end; then the rest, each awaited
healthy where it has a health URL. A process that an earlier supervisor left running (its pid
file, ``DIR/NAME.pid``, holds the pid and its start time: a live process that started then) is
adopted instead of started twice. Then it
watches: a process that exits has what is left of its process group killed, as a container's
go with it, and is started again after a back-off of 1 s, doubling at each exit up to 30 s,
back to 1 s once the process has stayed up 60 s (Kubernetes' CrashLoopBackOff, whose figures
are 10 s, 5 min and 10 min). A bootstrap that fails is retried the same way. A running process
whose liveness probes fail (``workers.liveness``: compose's healthchecks, Kubernetes' timing)
is killed, and so restarted the same way. Each exit, kill and restart is logged (stdout:
``farmctl up`` sends it to ``DIR/supervisor.log``).

SIGTERM (or SIGINT) stops the supervisor alone: the processes keep running, each in its own
session, and the next supervisor adopts them, as a restarted kubelet leaves its pods be.
``farmctl down`` stops the supervisor first, so that nothing is restarted, then the processes.

Its view, ``DIR/supervisor.json``, is replaced whole (a temporary file renamed) at each change::

    {"supervisor": {"pid": 4242, "started_at": 1718000000.0, "stopped_at": null,
                    "plan": "workers.farm_processes:farm_plan",
                    "options": {"api_port": 8000, "s3_port": 9000, "flower_port": 5555,
                                "gpu_concurrency": 2}},
     "processes": {"api": {"pid": 4250, "state": "running", "restarts": 0, "last_exit": null,
                           "started_at": 1718000001.2, "adopted": false}, ...}}

``state`` is ``pending`` (waiting for the processes before it), ``starting`` (started, its health
URL not answering yet), ``running`` (for a process without a health URL: started and not
exited), ``backing-off`` (exited; started again after the delay) or ``done`` (a one-shot step
that succeeded). ``pid`` is null unless the process runs;
``started_at`` (Unix time) is when it last started. ``restarts`` counts its exits so far, each
followed by a restart. ``last_exit`` is the status of its last exit (negative: killed by that
signal), null before the first, or when an adopted process, not this supervisor's child, exits.
``adopted``: found running when this supervisor started.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.farm_processes import Process, answers, farm_environment, start
from workers.farm_state import (
    DEFAULT_PLAN,
    describe_exit,
    farm_pid,
    load_plan,
    signal_group,
    start_ticks,
    write_pid_file,
    write_status,
)
from workers.liveness import Probe

log = logging.getLogger("lyre.supervisor")
TICK_S = 0.1


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    cap: float = 30.0
    reset_after: float = 60.0  # seconds up after which an exit counts as the first again


@dataclass
class Supervised:
    """One process of the plan, as the supervisor sees it."""

    spec: Process
    delay: float  # the back-off before its next restart
    state: str = "pending"
    pid: int | None = None
    child: subprocess.Popen | None = None  # None when adopted: not this supervisor's child
    restarts: int = 0
    last_exit: int | None = None
    started_at: float | None = None
    ticks: int | None = None  # its start time: with the pid, who it is
    up_since: float = 0.0  # monotonic
    probe: Probe | None = None  # its liveness probes while it runs
    due: float = 0.0  # monotonic time of its restart
    adopted: bool = False

    @property
    def ready(self) -> bool:
        """Whether the processes after it may start."""
        return self.state == ("done" if self.spec.one_shot else "running")

    def view(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "started_at": self.started_at,
            "adopted": self.adopted,
        }


class Supervisor:
    def __init__(
        self,
        plan: list[Process],
        env: dict[str, str],
        state_dir: Path,
        backoff: Backoff,
        header: dict[str, Any],
    ) -> None:
        self.items = [Supervised(spec, backoff.initial) for spec in plan]
        self.env, self.state_dir, self.backoff = env, state_dir, backoff
        self.header = {**header, "pid": os.getpid(), "started_at": time.time(), "stopped_at": None}
        self.stopping = False

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.adopt()
        self.publish()
        while not self.stopping:
            changed = [self.step(index) for index in range(len(self.items))]
            if any(changed):
                self.publish()
            time.sleep(TICK_S)
        for item in self.items:
            if item.probe is not None:
                item.probe.close()
        self.header["stopped_at"] = time.time()
        self.publish()
        log.info("supervisor stopped; the processes it watched keep running")

    def _stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def adopt(self) -> None:
        for item in self.items:
            pid = None if item.spec.one_shot else farm_pid(item.spec, self.state_dir)
            if pid is None:
                continue
            started_at = (self.state_dir / f"{item.spec.name}.pid").stat().st_mtime
            item.pid, item.ticks, item.adopted = pid, start_ticks(pid), True
            item.started_at = started_at
            item.up_since = time.monotonic() - max(0.0, time.time() - started_at)
            item.state = "starting" if item.spec.health_url else "running"
            log.info(
                "%s: adopted pid %d, left running by an earlier supervisor", item.spec.name, pid
            )

    def publish(self) -> None:
        processes = {item.spec.name: item.view() for item in self.items}
        write_status(self.state_dir, {"supervisor": self.header, "processes": processes})

    def step(self, index: int) -> bool:
        """Move one process on if it is due to; whether anything changed."""
        item = self.items[index]
        # one at a time: started all together on two cores, the api took 26 s to answer, not 7
        if item.state == "pending" and all(before.ready for before in self.items[:index]):
            self.launch(item)
        elif item.state == "backing-off" and time.monotonic() >= item.due:
            self.launch(item)
        elif item.state in ("starting", "running"):
            exited, status = self.poll(item)
            if exited:
                self.exited(item, status)
            elif item.state == "starting" and self.healthy(item):
                item.state = "running"
                log.info("%s: running", item.spec.name)
            elif not (item.state == "running" and self.killed_for_liveness(item)):
                return False
        else:
            return False
        return True

    def killed_for_liveness(self, item: Supervised) -> bool:
        """Probe a running process; kill it once its probes have failed (its exit, seen at the
        next tick, restarts it)."""
        if item.spec.liveness is None:
            return False
        item.probe = item.probe or Probe(item.spec.liveness, self.env)
        why = item.probe.step()
        if why is None:
            return False
        log.warning("%s: %s; killing it", item.spec.name, why)
        assert item.pid is not None
        signal_group(item.pid, signal.SIGKILL)
        return True

    def healthy(self, item: Supervised) -> bool:
        url = item.spec.health_url
        return url is None or answers(url, timeout=0.5)

    def launch(self, item: Supervised) -> None:
        try:
            item.child = start(item.spec, self.env, self.state_dir)
        except OSError as error:  # its command is missing: retried, as a failing container is
            self.back_off(item, None, 0.0, f"could not start ({error})")
            return
        item.pid, item.adopted, item.state = item.child.pid, False, "starting"
        write_pid_file(self.state_dir / f"{item.spec.name}.pid", item.pid)
        item.ticks = start_ticks(item.pid)
        item.started_at, item.up_since = time.time(), time.monotonic()
        again = f" (restart {item.restarts})" if item.restarts else ""
        log.info("%s: started pid %d%s", item.spec.name, item.pid, again)

    def poll(self, item: Supervised) -> tuple[bool, int | None]:
        """Whether the process has exited, and its status if this supervisor can know it."""
        if item.child is not None:
            status = item.child.poll()
            return status is not None, status
        assert item.pid is not None
        return start_ticks(item.pid) != item.ticks, None

    def exited(self, item: Supervised, status: int | None) -> None:
        assert item.pid is not None
        signal_group(item.pid, signal.SIGKILL)  # what it left behind in its group goes with it
        up_for = time.monotonic() - item.up_since
        item.pid, item.child, item.last_exit = None, None, status
        if item.probe is not None:
            item.probe.close()
            item.probe = None
        if item.spec.one_shot and status == 0:
            item.state = "done"
            log.info("%s: done in %.1f s", item.spec.name, up_for)
            return
        self.back_off(
            item, status, up_for, f"exited ({describe_exit(status)}) after {up_for:.1f} s"
        )

    def back_off(self, item: Supervised, status: int | None, up_for: float, why: str) -> None:
        """Schedule the restart: the delay doubles at each exit, from the first again once the
        process had stayed up ``reset_after``."""
        if up_for >= self.backoff.reset_after:
            item.delay = self.backoff.initial
        item.state, item.due = "backing-off", time.monotonic() + item.delay
        item.restarts, item.last_exit = item.restarts + 1, status
        log.warning("%s: %s; restart %d in %g s", item.spec.name, why, item.restarts, item.delay)
        item.delay = min(item.delay * 2, self.backoff.cap)


def hold_lock(state_dir: Path) -> int | None:
    """Lock the state dir for this process's life (the kernel drops the lock when it ends);
    None if another supervisor holds it."""
    fd = os.open(state_dir / "supervisor.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m workers.supervisor")
    parser.add_argument("--state-dir", type=Path, default=Path(".farm"))
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--s3-port", type=int, default=9000)
    parser.add_argument("--flower-port", type=int, default=5555)
    parser.add_argument("--gpu-concurrency", type=int, default=2)
    parser.add_argument("--plan", default=DEFAULT_PLAN, help="module:function listing processes")
    parser.add_argument("--backoff-initial", type=float, default=Backoff.initial)
    parser.add_argument("--backoff-cap", type=float, default=Backoff.cap)
    parser.add_argument("--backoff-reset", type=float, default=Backoff.reset_after)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per health probe otherwise
    state_dir = args.state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    if hold_lock(state_dir) is None:
        sys.exit(f"a supervisor already runs for {state_dir}")
    (state_dir / "supervisor.pid").write_text(str(os.getpid()))
    options = {
        "api_port": args.api_port,
        "s3_port": args.s3_port,
        "flower_port": args.flower_port,
        "gpu_concurrency": args.gpu_concurrency,
    }
    plan = load_plan(args.plan)(**options, state_dir=state_dir)
    backoff = Backoff(args.backoff_initial, args.backoff_cap, args.backoff_reset)
    header = {"plan": args.plan, "options": options}
    Supervisor(plan, farm_environment(args.s3_port), state_dir, backoff, header).run()


if __name__ == "__main__":
    main()
