"""A real worker's task events (what Flower reads) arrive whole, in batches, over Redis."""

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from shared.infra import queues
from tests.services import REDIS_TEST_PREFIX, REDIS_TEST_URL
from workers.app import create_app

TASKS = 20


def _events(message: bytes) -> list[dict]:
    """The task events in one published kombu message (a batch is a list)."""
    envelope = json.loads(message)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    events = json.loads(body)
    return events if isinstance(events, list) else [events]


def test_task_events_reach_redis_whole_and_batched(farm_settings, farm_env, tmp_path: Path):
    subscriber = redis.Redis.from_url(REDIS_TEST_URL).pubsub()
    subscriber.psubscribe(f"{REDIS_TEST_PREFIX}/*celeryev*")  # this run's events alone
    argv = [Path(sys.executable).parent / "celery", "-A", "workers.app", "worker"]
    argv += ["-Q", queues.CPU, "--pool", "threads", "-c", "2", "--without-mingle"]
    argv += ["--without-gossip", "--loglevel=INFO"]
    with (tmp_path / "worker.log").open("wb") as log:  # the child keeps its own descriptor
        worker = subprocess.Popen(
            argv,
            env={**os.environ, **farm_env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        app = create_app()
        for _ in range(TASKS):  # the reconciler's task: it needs no job
            app.send_task(queues.RECONCILE)
        messages, events = 0, []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = subscriber.get_message(timeout=1)
            if message is None or message["type"] != "pmessage":
                continue
            batch = [e for e in _events(message["data"]) if e["type"].startswith("task-")]
            messages, events = messages + bool(batch), events + batch
            if sum(e["type"] == "task-succeeded" for e in events) == TASKS:
                break
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        subscriber.close()
    kinds = [e["type"] for e in events]
    for kind in ("task-received", "task-started", "task-succeeded"):
        assert kinds.count(kind) == TASKS, kinds
    assert messages < TASKS  # stock Celery: about one publish per event, 60 here
