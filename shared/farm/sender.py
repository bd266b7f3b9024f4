"""The sending side of the queues: a Celery app that knows the broker and which queue each task
goes to, by name (the api and the dispatcher send without the tasks' code); the farm's messages
sent through it; and the farm as the api and the workers see it. ``workers.app`` builds the
workers' Celery app on the same configuration."""

from __future__ import annotations

import uuid
from functools import cache
from urllib.parse import urlsplit

from celery import Celery
from kombu import Queue

from shared.farm.context import FarmContext
from shared.infra import broker, queues
from shared.infra.db import bookkeeping_scope, session_scope
from shared.infra.settings import Settings, get_settings
from shared.infra.storage import open_store


def celery_app(settings: Settings) -> Celery:
    """Celery on the farm's broker, routing each task to its queue by name."""
    app = Celery("lyre", broker=settings.redis.url)
    if urlsplit(settings.redis.url).scheme == "redis":  # rediss:// and sentinel:// stay kombu's
        app.conf.broker_transport = broker.TRANSPORT
    transport: dict[str, object] = {"visibility_timeout": settings.redis.visibility_timeout_s}
    if settings.redis.key_prefix:  # every key and channel of this farm under it (kombu's redis)
        transport["global_keyprefix"] = settings.redis.key_prefix
    app.conf.update(
        task_queues=[Queue(name) for name in queues.QUEUES],
        task_default_queue=queues.CPU,
        task_routes={
            "gpu.*": {"queue": queues.GPU},
            "cpu.*": {"queue": queues.CPU},
            "stitch.*": {"queue": queues.STITCH},
            "webhooks.*": {"queue": queues.WEBHOOKS},
        },
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # a task-sent event for Flower would be one more Redis publish per message sent,
        # costing as much as the message
        task_send_sent_event=False,
    )
    return app


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


@cache
def _sending_app() -> Celery:
    return celery_app(get_settings())


def celery_farm(app: Celery | None = None) -> FarmContext:
    """The farm as the api and the workers see it: settings, object store, Celery, Postgres.
    ``app``: the workers' own Celery app, whose connections their messages go out on; else
    one that only sends (the api's, the dispatcher's), built once a process."""
    settings = get_settings()
    store, sender = open_store(settings.storage), CelerySender(app or _sending_app())
    return FarmContext(settings, store, sender, session_scope, bookkeeping_scope)
