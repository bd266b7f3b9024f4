"""Flower refuses to be reachable from other machines with credentials anyone can read here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.infra.settings import FlowerSettings
from workers.flower import refusal


@pytest.mark.parametrize(
    ("address", "auth", "refused"),
    [
        ("127.0.0.1", "lyre:lyre", False),  # the default: this machine only
        ("localhost", "lyre:change-me", False),
        ("::1", "lyre:lyre", False),
        ("0.0.0.0", "lyre:lyre", True),
        ("0.0.0.0", "lyre:change-me", True),  # compose's and k8s's placeholder
        ("flower.internal", "lyre:lyre", True),  # a name may resolve anywhere
        ("0.0.0.0", "ops:a-long-password", False),
        ("127.0.0.1", "nopassword", True),
        ("127.0.0.1", ":secret", True),
    ],
)
def test_flower_refuses_default_credentials_beyond_loopback(address, auth, refused):
    assert (refusal(FlowerSettings(address=address, basic_auth=auth)) is not None) == refused


def test_the_refusal_is_one_line_and_exit_code_2():
    env = {**os.environ, "LYRE_FLOWER__ADDRESS": "0.0.0.0", "LYRE_FLOWER__BASIC_AUTH": "lyre:lyre"}
    proc = subprocess.run(
        [sys.executable, "-m", "workers.flower"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("flower: refusing to listen on 0.0.0.0")
