"""Dependencies the routes share: the farm's handles and the calling tenant."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from api.errors import LimitReached, NotAuthenticated
from api.services.readers import Readers
from shared.farm.context import Farm
from shared.farm.limits import TooManyRequests, limits_for, take_request, take_request_on_loop
from shared.farm.tenants import tenant_for_key
from shared.infra import queues
from shared.infra.models import Tenant

log = logging.getLogger(__name__)


@cache
def process_farm() -> Farm:
    """The farm as this process sees it, built on first use."""
    from workers.sender import celery_farm

    return celery_farm()


async def get_farm() -> Farm:
    """Every route's farm (tests override this). A coroutine, so that FastAPI calls it on the
    event loop: a plain function would be sent to a worker thread and back at each request."""
    return process_farm()


async def bearer_key(request: Request) -> str:
    """The API key the request carries (not checked yet); 401 without one. On the event loop:
    it reads a header, no thread needed."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise NotAuthenticated()
    return key.strip()


KeyDep = Annotated[str, Depends(bearer_key)]


def current_tenant(key: KeyDep, farm: Annotated[Farm, Depends(get_farm)]) -> Tenant:
    """The tenant whose key the request carries, its request counted against its rate."""
    with farm.sessions() as session:
        tenant = tenant_for_key(session, key)
    if tenant is None:
        raise NotAuthenticated("the API key is not valid")
    count_request(farm, tenant)
    return tenant


def count_request(farm: Farm, tenant: Tenant) -> None:
    """429 past the tenant's requests a second; with Redis away, the request goes through
    (the limit protects the farm from a client, not from Redis's absence)."""
    client = queues.redis_client(farm.settings.redis.url, timeout_s=1)
    with _counted(tenant):
        take_request(client, _rate_key(farm, tenant), limits_for(tenant, farm.settings.limits))


async def count_request_on_loop(farm: Farm, client: AsyncRedis, tenant: Tenant) -> None:
    """:func:`count_request` from the event loop, through an asyncio client (given up after a
    second, as the threads' client's reads are)."""
    with _counted(tenant):
        limits = limits_for(tenant, farm.settings.limits)
        async with asyncio.timeout(1):
            await take_request_on_loop(client, _rate_key(farm, tenant), limits)


def _rate_key(farm: Farm, tenant: Tenant) -> str:
    return queues.key(farm.settings.redis.key_prefix, queues.RATE_KEY + str(tenant.id))


@contextmanager
def _counted(tenant: Tenant) -> Iterator[None]:
    try:
        yield
    except TooManyRequests as exc:
        raise LimitReached(str(exc), exc.retry_after_s) from None
    except (RedisError, TimeoutError) as exc:
        log.warning("requests of tenant %s not counted: %r", tenant.name, exc)


async def get_readers(request: Request) -> Readers:
    """The event loop's connections and clients, opened by the app's lifespan (``api.app``)."""
    return request.app.state.readers


FarmDep = Annotated[Farm, Depends(get_farm)]
ReadersDep = Annotated[Readers, Depends(get_readers)]
TenantDep = Annotated[Tenant, Depends(current_tenant)]
