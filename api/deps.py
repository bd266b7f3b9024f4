"""Dependencies the routes share: the farm's handles and the calling tenant."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from fastapi import Depends, Request

from api.errors import NotAuthenticated
from api.services import rates
from api.services.readers import Readers
from shared.farm.context import FarmContext
from shared.farm.sender import celery_farm
from shared.farm.tenants import tenant_for_key
from shared.infra.models import Tenant


@cache
def process_farm() -> FarmContext:
    """The farm as this process sees it, built on first use."""
    return celery_farm()


async def get_farm() -> FarmContext:
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


def current_tenant(key: KeyDep, farm: Annotated[FarmContext, Depends(get_farm)]) -> Tenant:
    """The tenant whose key the request carries, its request counted against its rate."""
    with farm.sessions() as session:
        tenant = tenant_for_key(session, key)
    if tenant is None:
        raise NotAuthenticated("the API key is not valid")
    rates.count_request(farm, tenant)
    return tenant


async def get_readers(request: Request) -> Readers:
    """The event loop's connections and clients, opened by the app's lifespan (``api.app``)."""
    return request.app.state.readers


FarmDep = Annotated[FarmContext, Depends(get_farm)]
ReadersDep = Annotated[Readers, Depends(get_readers)]
TenantDep = Annotated[Tenant, Depends(current_tenant)]
