"""Healthchecks for compose.yaml and k8s/ probes: ``python -m workers.healthcheck KIND [ARG]``.

  http URL       the URL answers 2xx               (api, flower)
  worker NODE    the Celery node answers a ping    (cpu@host, stitch@host, …)
  engine NODE    the node answers and its engine is alive      (gpu@host)
  beat           the reconciler ran within three of its periods (beat and a cpu worker alive)
  dispatcher     this host's dispatcher ticked within three of its periods and ten seconds

Exit status 0 when healthy, 1 with one line on stderr when not.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable

import httpx

from shared.infra import queues
from shared.infra.settings import get_settings


def check_http(url: str) -> str | None:
    try:
        status = httpx.get(url, timeout=5).status_code
    except httpx.HTTPError as exc:
        return f"{url}: {exc.__class__.__name__}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def check_worker(node: str) -> str | None:
    from workers.app import app

    node = node.replace("%h", socket.gethostname())
    replies = app.control.ping(destination=[node], timeout=5)
    return None if replies else f"worker {node} did not answer a ping"


def check_engine(node: str) -> str | None:
    from workers.app import app

    node = node.replace("%h", socket.gethostname())
    replies = app.control.broadcast("engine_health", destination=[node], reply=True, timeout=5)
    if not replies:
        return f"worker {node} did not answer"
    health = next(iter(replies[0].values()))
    return None if health.get("ok") else f"worker {node}: {health.get('detail')}"


def check_beat() -> str | None:
    settings = get_settings()
    client = queues.redis_client(settings.redis.url, timeout_s=5)
    raw = client.get(queues.key(settings.redis.key_prefix, queues.RECONCILER_HEARTBEAT_KEY))
    if raw is None:
        return "the reconciler has not run yet"
    age = time.time() - float(raw)
    limit = 3 * settings.farm.reconcile_every_s + 10
    return None if age <= limit else f"the reconciler last ran {age:.0f} s ago"


def check_dispatcher() -> str | None:
    from workers.dispatcher import heartbeat_key

    settings = get_settings()
    client = queues.redis_client(settings.redis.url, timeout_s=5)
    raw = client.get(heartbeat_key(settings))
    if raw is None:
        return "the dispatcher has not ticked yet"
    age = time.time() - float(raw)
    limit = 3 * settings.dispatch.every_s + 10
    return None if age <= limit else f"the dispatcher last ticked {age:.0f} s ago"


def main(argv: list[str]) -> int:
    kind, *rest = argv or ["?"]
    checks: dict[str, Callable[..., str | None]] = {
        "http": check_http,
        "worker": check_worker,
        "engine": check_engine,
        "beat": check_beat,
        "dispatcher": check_dispatcher,
    }
    if kind not in checks or len(rest) != (0 if kind in ("beat", "dispatcher") else 1):
        print(__doc__, file=sys.stderr)
        return 2
    problem = checks[kind](*rest)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
