"""Counting a tenant's API requests against its rate (``shared.farm.limits``: GCRA in Redis), from
a worker thread or from the event loop; past it, a 429 with Retry-After. With Redis away the
request goes through: the limit protects the farm from a client, not from Redis's absence."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from api.errors import LimitReached
from shared.farm.context import FarmContext
from shared.farm.limits import TooManyRequests, limits_for, take_request, take_request_on_loop
from shared.infra import queues
from shared.infra.models import Tenant

log = logging.getLogger(__name__)


def count_request(farm: FarmContext, tenant: Tenant) -> None:
    """Count a request of ``tenant``'s; :class:`LimitReached` past its rate."""
    client = queues.redis_client(farm.settings.redis.url, timeout_s=1)
    with _counted(tenant):
        take_request(client, _rate_key(farm, tenant), limits_for(tenant, farm.settings.limits))


async def count_request_on_loop(farm: FarmContext, client: AsyncRedis, tenant: Tenant) -> None:
    """:func:`count_request` from the event loop, through an asyncio client (given up after a
    second, as the threads' client's reads are)."""
    with _counted(tenant):
        limits = limits_for(tenant, farm.settings.limits)
        async with asyncio.timeout(1):
            await take_request_on_loop(client, _rate_key(farm, tenant), limits)


def _rate_key(farm: FarmContext, tenant: Tenant) -> str:
    return queues.key(farm.settings.redis.key_prefix, queues.RATE_KEY + str(tenant.id))


@contextmanager
def _counted(tenant: Tenant) -> Iterator[None]:
    try:
        yield
    except TooManyRequests as exc:
        raise LimitReached(str(exc), exc.retry_after_s) from None
    except (RedisError, TimeoutError) as exc:
        log.warning("requests of tenant %s not counted: %r", tenant.name, exc)
