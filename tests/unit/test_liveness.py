"""The supervisor's liveness probes (workers/liveness.py) on real commands: a failure counts
only in a row, a probe past its timeout is a failure (and is killed), none runs in the grace
period, and what the last failing probe said is the reason given."""

from __future__ import annotations

import os
import time

from workers.liveness import Liveness, Probe


def run_until_verdict(probe: Probe, probes: int) -> list[str | None]:
    """The probe's step at each tick until ``probes`` probes have ended."""
    verdicts: list[str | None] = []
    while len(verdicts) < probes:
        running = probe.running
        verdict = probe.step()
        if running is not None and probe.running is None:  # a probe ended at this step
            verdicts.append(verdict)
        time.sleep(0.01)
    return verdicts


def test_failures_count_in_a_row_and_the_last_one_is_the_reason(tmp_path):
    flag = tmp_path / "ok"
    check = ("sh", "-c", f'test -e {flag} || {{ echo "worker cpu@x did not answer" >&2; exit 1; }}')
    probe = Probe(Liveness(check, grace_s=0, period_s=0, failures=2), dict(os.environ))
    assert run_until_verdict(probe, 1) == [None]  # one failure: not yet
    flag.touch()
    assert run_until_verdict(probe, 1) == [None] and probe.failed == 0  # a pass resets
    flag.unlink()
    assert run_until_verdict(probe, 2) == [
        None,
        "its liveness probe failed 2 times in a row (the last: worker cpu@x did not answer)",
    ]


def test_a_probe_past_its_timeout_fails_and_is_killed():
    probe = Probe(Liveness(("sleep", "30"), grace_s=0, timeout_s=0.3, failures=1), {})
    probe.step()
    hung = probe.running
    assert hung is not None
    started = time.monotonic()
    (verdict,) = run_until_verdict(probe, 1)
    assert verdict == "its liveness probe failed 1 times in a row (the last: no answer in 0.3 s)"
    assert 0.3 <= time.monotonic() - started < 5 and hung.poll() is not None


def test_no_probe_runs_in_the_grace_period():
    probe = Probe(Liveness(("true",), grace_s=30), {})
    assert probe.step() is None and probe.running is None


def test_close_stops_a_probe_still_running():
    probe = Probe(Liveness(("sleep", "30"), grace_s=0), {})
    probe.step()
    hung = probe.running
    probe.close()
    assert probe.running is None and hung is not None and hung.poll() is not None
