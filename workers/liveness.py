"""Liveness probes of the native farm's processes: a process that runs but no longer works (a
worker that stopped answering its broker, an engine that died under a live worker, a wedged
api) is killed by the supervisor, and so restarted as if it had exited, as Kubernetes does on
a failing ``livenessProbe``. The probes are the commands compose.yaml and k8s/ run
(``python -m workers.healthcheck …``), with Kubernetes' timing: a grace period after the
process starts, then one probe a period, each given a timeout, and the process killed after
``failures`` in a row.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Liveness:
    command: tuple[str, ...]  # exits 0 while the process works
    grace_s: float = 30.0  # after the process starts (Kubernetes' initialDelaySeconds)
    period_s: float = 60.0
    timeout_s: float = 15.0
    failures: int = 3  # in a row: then the process is killed


class Probe:
    """One process's probes over one of its lives: at most one running at a time, started and
    read without waiting, so that the supervisor's loop never blocks on one."""

    def __init__(self, liveness: Liveness, env: dict[str, str]) -> None:
        self.liveness, self.env = liveness, env
        self.due = time.monotonic() + liveness.grace_s
        self.running: subprocess.Popen | None = None
        self.started = 0.0
        self.failed = 0
        self.last = ""  # what the last failure said

    def step(self) -> str | None:
        """Start or read a probe if it is time to; why the process should be killed, or None."""
        now = time.monotonic()
        if self.running is None:
            if now >= self.due:
                self.running, self.started = self._start(), now
            return None
        status = self.running.poll()
        if status is None and now < self.started + self.liveness.timeout_s:
            return None
        said = self._finish(status)
        self.due = now + self.liveness.period_s
        if status == 0:
            self.failed = 0
            return None
        self.failed += 1
        self.last = said or f"exit {status}"
        if self.failed < self.liveness.failures:
            return None
        return f"its liveness probe failed {self.failed} times in a row (the last: {self.last})"

    def close(self) -> None:
        """Stop a probe still running (its process is gone)."""
        if self.running is not None:
            self._finish(None)

    def _start(self) -> subprocess.Popen:
        return subprocess.Popen(
            self.liveness.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def _finish(self, status: int | None) -> str:
        """The probe's last line on stderr; a probe still running (past its timeout) is killed."""
        probe, self.running = self.running, None
        assert probe is not None and probe.stderr is not None
        if status is None:
            probe.kill()
            probe.wait()
            probe.stderr.close()
            return f"no answer in {self.liveness.timeout_s:g} s"
        with probe.stderr:
            lines = probe.stderr.read().strip().splitlines()
        return lines[-1] if lines else ""
