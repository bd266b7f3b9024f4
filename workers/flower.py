"""Start Flower for the farm's Celery app with basic auth from Lyre's settings.

``python -m workers.flower`` runs ``celery -A workers.app flower`` with the address, port and
credentials of ``LYRE_FLOWER__*``, so that no password has to appear on a command line. Flower
can revoke and rate-limit tasks and shows their arguments: it refuses to listen beyond this
machine with credentials anyone can read in this repository.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

from shared.infra.settings import FlowerSettings, get_settings

# the settings' default and the placeholder compose.yaml and k8s/ ship
KNOWN_CREDENTIALS = {"lyre:lyre", "lyre:change-me"}


def refusal(settings: FlowerSettings) -> str | None:
    """Why Flower must not start with these settings, or None."""
    user, _, password = settings.basic_auth.partition(":")
    if not user or not password:
        return "LYRE_FLOWER__BASIC_AUTH must be user:password"
    if _loopback(settings.address) or settings.basic_auth not in KNOWN_CREDENTIALS:
        return None
    return (
        f"refusing to listen on {settings.address} with the default credentials: set "
        "LYRE_FLOWER__BASIC_AUTH to a user:password of your own (or listen on 127.0.0.1)"
    )


def _loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def main() -> None:
    settings = get_settings().flower
    refused = refusal(settings)
    if refused:
        print(f"flower: {refused}", file=sys.stderr)
        sys.exit(2)
    os.environ["FLOWER_BASIC_AUTH"] = settings.basic_auth
    argv = [
        str(Path(sys.executable).parent / "celery"),
        "-A",
        "workers.app",
        "flower",
        f"--address={settings.address}",
        f"--port={settings.port}",
        "--persistent=False",
        *sys.argv[1:],
    ]
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main()
