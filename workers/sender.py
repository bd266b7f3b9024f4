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

    def generate(self, job_id: uuid.UUID, index: int) -> None:
        self.app.send_task(queues.GENERATE_CHUNK, kwargs={"job_id": str(job_id), "chunk": index})

    def decode(self, job_id: uuid.UUID, index: int) -> None:
        self.app.send_task(queues.DECODE_CHUNK, kwargs={"job_id": str(job_id), "chunk": index})

    def stitch_chapter(self, job_id: uuid.UUID, chapter: int) -> None:
        kwargs = {"job_id": str(job_id), "chapter": chapter}
        self.app.send_task(queues.STITCH_CHAPTER, kwargs=kwargs)

    def stitch(self, job_id: uuid.UUID) -> None:
        self.app.send_task(queues.STITCH_JOB, kwargs={"job_id": str(job_id)})

    def deliver(self, delivery_id: str, delay_s: float = 0) -> None:
        self.app.send_task(
            queues.DELIVER_WEBHOOK, kwargs={"delivery_id": delivery_id}, countdown=delay_s or None
        )


def celery_farm() -> Farm:
    """The farm as the api and the workers see it: settings, object store, Celery, Postgres."""
    from workers.app import app

    settings = get_settings()
    store, sender = open_store(settings.storage), CelerySender(app)
    return Farm(settings, store, sender, session_scope, bookkeeping_scope)
