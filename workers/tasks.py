"""Celery tasks: each a few lines around a stage function in ``shared.farm.stages``.

Failures are retried with backoff; when a task runs out of retries its job is failed (and its
webhook sent), never silently dropped.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

import httpx
from celery import Task
from celery.exceptions import Reject
from celery.signals import worker_init, worker_shutdown

from shared.farm import stages
from shared.farm.book_stitch import stitch_job as stitch
from shared.farm.chapter_stitch import stitch_chapter as chapter_stitch
from shared.farm.context import FarmContext
from shared.farm.jobs import fail_job
from shared.farm.live import LivePublisher, live_publisher
from shared.farm.reconcile import reconcile
from shared.farm.retention import expire
from shared.farm.sender import celery_farm
from shared.infra import queues
from shared.infra.outages import dependency_down
from shared.infra.settings import get_settings
from shared.speech.engine import EngineDead
from shared.speech.factory import makes_codes
from shared.speech.seats import book_slots
from shared.webhooks.delivery import deliver
from workers import engine_host
from workers.app import app

if TYPE_CHECKING:
    from celery.worker import WorkController

    from shared.snac.decoder import SnacDecoder

log = logging.getLogger(__name__)
# httpx logs each request's whole URL at INFO: a webhook URL's query may carry a token its
# receiver checks, which no log may keep
logging.getLogger("httpx").setLevel(logging.WARNING)


@cache
def farm() -> FarmContext:
    return celery_farm(app)


@cache
def live() -> LivePublisher | None:
    """Where a gpu worker publishes interactive chunks as they are made."""
    return live_publisher(get_settings())


@cache
def decoder() -> SnacDecoder | None:
    from shared.snac.decoder import SnacDecoder  # torch only where chunks are decoded

    settings = get_settings()
    if not makes_codes(settings):
        return None
    return SnacDecoder.from_settings(settings.orpheus)


@worker_init.connect
def _load_decoder_before_fork(sender: WorkController, **_: object) -> None:
    """A worker that decodes loads torch and SNAC before it takes work, in the parent process:
    its prefork processes share them, and the first chunks don't wait seconds for them. They
    inherit the one-thread setting too (prefork runs one process per core); processes of
    workers that never decode (stitch) never import torch."""
    if queues.CPU in sender.app.amqp.queues.consume_from:
        import torch

        torch.set_num_threads(1)
        decoder()


@worker_init.connect
def _start_engine(sender: WorkController, **_: object) -> None:
    """A gpu worker builds its engine before it takes chunks (loading vLLM takes minutes; the
    startup probe waits for it), and exits if it cannot; then it tells the dispatcher how many
    chunks of books it holds at once (its threads less those kept for urgent chunks), until it
    stops."""
    if queues.GPU in sender.app.amqp.queues.consume_from:
        if engine_host.start_engine():
            slots = book_slots(get_settings(), sender.concurrency)
            engine_host.start_heartbeat(farm(), sender.hostname, slots)


@worker_shutdown.connect
def _leave(sender: WorkController, **_: object) -> None:
    engine_host.stop_heartbeat()


def _run(task: Task, job_id: str, stage: Callable[[], object]) -> object:
    try:
        return stage()
    except EngineDead:
        raise  # not the chunk's fault: no retry counted against its job
    except Exception as exc:
        # A dependency away (a restart, an outage) is not the job's fault: waited out however
        # long it lasts, the delay capped lower. (Celery counts every retry of a message, so a
        # real failure after a long outage gives up sooner.)
        away = dependency_down(exc)
        if away is None and task.request.retries >= get_settings().farm.task_max_retries:
            log.exception("%s gave up on job %s", task.name, job_id)
            fail_job(farm(), uuid.UUID(job_id), f"{task.name} failed: {exc}")
            return None
        if away is not None:
            log.warning("%s of job %s waits for the %s: %s", task.name, job_id, away, exc)
        ceiling = 2 ** min(task.request.retries, 6)
        delay = min(10 if away else 60, ceiling) * random.uniform(0.5, 1.0)
        raise task.retry(exc=exc, countdown=delay) from exc


@app.task(name=queues.GENERATE_CHUNK, bind=True, max_retries=None)
def generate_chunk(self: Task, job_id: str, chunk: int, urgent: bool = False) -> object:
    try:
        loop, engine = engine_host.engine()
        return _run(
            self,
            job_id,
            lambda: stages.generate_chunk(
                farm(), loop, engine, uuid.UUID(job_id), chunk, urgent, live()
            ),
        )
    except EngineDead as exc:
        # The message goes back to the head of the queue as it came, for a healthy worker;
        # this one stops taking chunks and exits so that its supervisor restarts it.
        engine_host.engine_died(str(exc))
        raise Reject(exc, requeue=True) from exc


@app.task(name=queues.DECODE_CHUNK, bind=True, max_retries=None)
def decode_chunk(self: Task, job_id: str, chunk: int, urgent: bool = False) -> object:
    job = uuid.UUID(job_id)
    return _run(self, job_id, lambda: stages.decode_chunk(farm(), decoder(), job, chunk, urgent))


@app.task(name=queues.STITCH_CHAPTER, bind=True, max_retries=None)
def stitch_chapter(self: Task, job_id: str, chapter: int, urgent: bool = False) -> object:
    return _run(self, job_id, lambda: chapter_stitch(farm(), uuid.UUID(job_id), chapter, urgent))


@app.task(name=queues.STITCH_JOB, bind=True, max_retries=None)
def stitch_job(self: Task, job_id: str) -> object:
    return _run(self, job_id, lambda: stitch(farm(), uuid.UUID(job_id)))


@app.task(name=queues.DELIVER_WEBHOOK)
def deliver_webhook(delivery_id: str) -> None:
    settings = get_settings().webhooks
    with httpx.Client() as client:
        delay = deliver(farm().sessions, delivery_id, client, settings)
    if delay is not None:
        farm().send.deliver(delivery_id, delay)


@app.task(name=queues.RECONCILE)
def reconcile_farm() -> dict[str, int]:
    counts = reconcile(farm())
    _heartbeat()
    if any(counts.values()):
        log.info("reconciler re-sent %s", counts)
    return counts


@app.task(name=queues.EXPIRE)
def expire_objects() -> dict[str, int]:
    counts = expire(farm())
    if any(counts.values()):
        log.info(
            "retention removed the chunk audio of %(chunks)s jobs and the files of %(files)s; "
            "%(deleted)s deleted jobs swept",
            counts,
        )
    return counts


def _heartbeat() -> None:
    """Tell the beat healthcheck that the schedule is being served."""
    import time

    settings = get_settings().redis
    client = queues.redis_client(settings.url, timeout_s=5)
    heartbeat = queues.key(settings.key_prefix, queues.RECONCILER_HEARTBEAT_KEY)
    client.set(heartbeat, str(time.time()), ex=3600)
