"""Queue and task names: the one place that spells them; and Lyre's own Redis client."""

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
STITCH_JOB = "stitch.stitch_job"
DELIVER_WEBHOOK = "webhooks.deliver"

# Redis keys Lyre writes itself (Celery owns the queue lists above).
RECONCILER_HEARTBEAT_KEY = "lyre:reconciler:last-run"


@cache
def redis_client(url: str, timeout_s: float) -> redis.Redis:
    """A client for Lyre's own keys and the queues' lengths: one per process, URL and timeout,
    pooling its connections (not a new connection per call)."""
    import redis

    return redis.Redis.from_url(url, socket_timeout=timeout_s)
