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

from celery import Celery

from shared.farm.sender import celery_app
from shared.infra import queues
from shared.infra.settings import get_settings
from workers import consumer


def create_app() -> Celery:
    """The sending side's app (``shared.farm.sender``: broker, queues, routes) with what a
    worker and beat add: the tasks, acknowledgement late, events in batches, the schedule."""
    settings = get_settings()
    app = celery_app(settings)
    app.conf.update(
        include=["workers.tasks"],
        task_acks_late=True,  # a task lost with its worker is delivered again
        task_reject_on_worker_lost=True,
        # a lost broker connection (Redis restarting) does not stop the chunks in flight: they
        # finish, and their next messages go out once it is back (Celery's future default
        # would cancel them, leaving them taken until their leases ran out)
        worker_cancel_long_running_tasks_on_connection_loss=False,
        worker_prefetch_multiplier=1,
        # Flower: each worker sends received/started/succeeded in batches (workers.consumer)
        worker_send_task_events=True,
        worker_consumer=consumer.CONSUMER,  # task events in batches every 100 ms
        worker_hijack_root_logger=False,
        beat_schedule={
            "reconcile": {"task": queues.RECONCILE, "schedule": settings.farm.reconcile_every_s},
            "expire": {"task": queues.EXPIRE, "schedule": settings.retention.every_s},
        },
    )
    return app


app = create_app()
