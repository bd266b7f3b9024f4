"""Sends the farm's work to Celery by task name (the api uses this too, without task code)."""

from __future__ import annotations

import uuid

from celery import Celery

from shared import queues
from shared.db import bookkeeping_scope, session_scope
from shared.farm import Farm
from shared.settings import get_settings
from shared.storage import open_store


class CeleryDispatch:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def generate(self, job_id: uuid.UUID, index: int) -> None:
        self.app.send_task(queues.GENERATE_CHUNK, kwargs={"job_id": str(job_id), "chunk": index})

    def decode(self, job_id: uuid.UUID, index: int) -> None:
        self.app.send_task(queues.DECODE_CHUNK, kwargs={"job_id": str(job_id), "chunk": index})

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
    store, dispatch = open_store(settings.storage), CeleryDispatch(app)
    return Farm(settings, store, dispatch, session_scope, bookkeeping_scope)
