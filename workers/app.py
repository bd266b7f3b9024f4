"""The Celery application: Redis broker, one queue per kind of work, routed by task name.

One worker per kind, with the commands compose.yaml and k8s/ run (``workers.farmctl`` runs the
same ones on one machine):

    celery -A workers.app worker -Q gpu --pool threads --concurrency K -n gpu@%h
    celery -A workers.app worker -Q cpu --concurrency CORES -n cpu@%h     # decode, reconcile
    celery -A workers.app worker -Q stitch --concurrency 1 -n stitch@%h
    celery -A workers.app worker -Q webhooks --pool threads --concurrency 16 -n webhooks@%h
    celery -A workers.app beat                                              # the reconciler
    python -m workers.flower                                                # Flower, with auth

K is the chunks the gpu worker's one engine has in flight: with vLLM, ``max_num_seqs`` and an
eighth more (72 for 64: a thread between its chunk's end and the next claim leaves the batch a
sequence short, bench/batching.py); with a CPU engine, the cores it may use.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from celery import Celery
from kombu import Queue

from shared.infra import queues
from shared.infra.settings import RedisSettings, get_settings
from workers import broker, consumer


def transport_options(settings: RedisSettings) -> dict[str, object]:
    options: dict[str, object] = {"visibility_timeout": settings.visibility_timeout_s}
    if settings.key_prefix:  # every key and channel of this farm under it (kombu's redis)
        options["global_keyprefix"] = settings.key_prefix
    return options


def create_app() -> Celery:
    settings = get_settings()
    app = Celery("lyre", broker=settings.redis.url, include=["workers.tasks"])
    if urlsplit(settings.redis.url).scheme == "redis":  # rediss:// and sentinel:// stay kombu's
        app.conf.broker_transport = broker.TRANSPORT
    app.conf.update(
        task_queues=[Queue(name) for name in queues.QUEUES],
        task_default_queue=queues.CPU,
        task_routes={
            "gpu.*": {"queue": queues.GPU},
            "cpu.*": {"queue": queues.CPU},
            "stitch.*": {"queue": queues.STITCH},
            "webhooks.*": {"queue": queues.WEBHOOKS},
        },
        task_acks_late=True,  # a task lost with its worker is delivered again
        task_reject_on_worker_lost=True,
        # a lost broker connection (Redis restarting) does not stop the chunks in flight: they
        # finish, and their next messages go out once it is back (Celery's future default
        # would cancel them, leaving them taken until their leases ran out)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": settings.redis.visibility_timeout_s,
            # every key and channel of this farm under its prefix (kombu's redis transport)
            **(
                {"global_keyprefix": settings.redis.key_prefix} if settings.redis.key_prefix else {}
            ),
        },
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # Flower: each worker sends received/started/succeeded in batches (workers.consumer);
        # a task-sent event would be one more Redis publish per message sent, costing as much
        # as the message
        worker_send_task_events=True,
        task_send_sent_event=False,
        worker_consumer=consumer.CONSUMER,  # task events in batches every 100 ms
        worker_hijack_root_logger=False,
        beat_schedule={
            "reconcile": {"task": queues.RECONCILE, "schedule": settings.farm.reconcile_every_s},
            "expire": {"task": queues.EXPIRE, "schedule": settings.retention.every_s},
        },
    )
    return app


app = create_app()
