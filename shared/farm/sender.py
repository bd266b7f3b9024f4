"""Sends the farm's messages to Celery by task name (the api uses this too, without the tasks'
code), and builds the farm as the api and the workers see it."""

from __future__ import annotations

import uuid

from celery import Celery

from shared.farm.context import Farm
from shared.infra import queues
from shared.infra.db import bookkeeping_scope, session_scope
from shared.infra.settings import get_settings
from shared.infra.storage import open_store


class CelerySender:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def generate(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        kwargs = {"job_id": str(job_id), "chunk": index, "urgent": urgent}
        self.app.send_task(queues.GENERATE_CHUNK, kwargs=kwargs, priority=_priority(urgent))

    def decode(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        kwargs = {"job_id": str(job_id), "chunk": index, "urgent": urgent}
        self.app.send_task(queues.DECODE_CHUNK, kwargs=kwargs, priority=_priority(urgent))

    def stitch_chapter(self, job_id: uuid.UUID, chapter: int, urgent: bool = False) -> None:
        kwargs = {"job_id": str(job_id), "chapter": chapter, "urgent": urgent}
        self.app.send_task(queues.STITCH_CHAPTER, kwargs=kwargs, priority=_priority(urgent))

    def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None:
        kwargs = {"job_id": str(job_id)}
        self.app.send_task(queues.STITCH_JOB, kwargs=kwargs, priority=_priority(urgent))

    def deliver(self, delivery_id: str, delay_s: float = 0) -> None:
        self.app.send_task(
            queues.DELIVER_WEBHOOK, kwargs={"delivery_id": delivery_id}, countdown=delay_s or None
        )

    def window_lost(self) -> bool:
        """Redis keeps a key that the first call sets and nothing expires: when it is gone,
        Redis lost its data (and the messages sent before) since the last call."""
        settings = get_settings().redis
        client = queues.redis_client(settings.url, timeout_s=5)
        key = queues.key(settings.key_prefix, queues.BROKER_EPOCH_KEY)
        return bool(client.set(key, uuid.uuid4().hex, nx=True))


def _priority(urgent: bool) -> int:
    return queues.URGENT if urgent else queues.BULK


def celery_farm() -> Farm:
    """The farm as the api and the workers see it: settings, object store, Celery, Postgres."""
    from workers.app import app

    settings = get_settings()
    store, sender = open_store(settings.storage), CelerySender(app)
    return Farm(settings, store, sender, session_scope, bookkeeping_scope)
