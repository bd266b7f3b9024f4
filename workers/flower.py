"""Start Flower for the farm's Celery app with basic auth from Lyre's settings.

``python -m workers.flower`` runs ``celery -A workers.app flower`` with the address, port and
credentials of ``LYRE_FLOWER__*``, so that no password has to appear on a command line.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shared.infra.settings import get_settings


def main() -> None:
    settings = get_settings().flower
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
