"""Queue and task names, Redis keys: the one place that spells them; and Lyre's own Redis client.

Every key is stored under ``LYRE_REDIS__KEY_PREFIX`` (Celery's ``global_keyprefix`` for its
queues, events and remote control; :func:`key` for Lyre's own), so that farms sharing a Redis
database never see each other's messages."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

GPU = "gpu"
CPU = "cpu"
STITCH = "stitch"
WEBHOOKS = "webhooks"
QUEUES = (GPU, CPU, STITCH, WEBHOOKS)

GENERATE_CHUNK = "gpu.generate_chunk"
DECODE_CHUNK = "cpu.decode_chunk"
RECONCILE = "cpu.reconcile"
EXPIRE = "cpu.expire"  # objects past their retention
STITCH_CHAPTER = "stitch.stitch_chapter"
STITCH_JOB = "stitch.stitch_job"
DELIVER_WEBHOOK = "webhooks.deliver"

# Celery's priorities on Redis: 0 is taken first (kombu's Redis transport keeps 3, 6 and 9 in
# lists of their own and pops the lists in that order). Book chunks go as BULK, short jobs' as
# URGENT, so that a short job's chunks pass a book's already on the queue.
URGENT, BULK = 0, 6

# Redis keys Lyre writes itself (Celery owns the queue lists above).
RECONCILER_HEARTBEAT_KEY = "lyre:reconciler:last-run"
DISPATCHER_HEARTBEAT_KEY = "lyre:dispatcher:last-tick"
# Set once by the dispatcher, never expiring: gone means Redis lost its data (restarted without
# saving, flushed), and with it every message the dispatcher had sent.
BROKER_EPOCH_KEY = "lyre:broker:epoch"
RATE_KEY = "lyre:rate:"  # + tenant id: its API requests (GCRA's theoretical arrival time)
LIVE_KEY = "lyre:live:"  # + job id, ":", chunk index: a stream of the chunk's speech as it is made

# Postgres NOTIFY channel (per database): there is new work to dispatch.
DISPATCH_CHANNEL = "lyre_dispatch"


def key(prefix: str, name: str) -> str:
    """A key or a queue's list as Redis stores it: the farm's prefix, then the name."""
    return prefix + name


def queue_lists(prefix: str, queue: str) -> list[str]:
    """The lists that hold a queue's messages: the queue, and Celery's priority lists
    (``name\\x06\\x16N``, Celery's separator, for priorities 1-9)."""
    return [key(prefix, queue)] + [key(prefix, f"{queue}\x06\x16{p}") for p in range(1, 10)]


@cache
def redis_client(url: str, timeout_s: float) -> redis.Redis:
    """A client for Lyre's own keys and the queues' lengths: one per process, URL and timeout,
    pooling its connections (not a new connection per call)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout_s)
