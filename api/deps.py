"""Dependencies the routes share: the farm's handles and the calling tenant."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from fastapi import Depends, Request

from api.errors import NotAuthenticated
from shared.farm.context import Farm
from shared.farm.tenants import tenant_for_key
from shared.infra.models import Tenant


@cache
def get_farm() -> Farm:
    from workers.sender import celery_farm

    return celery_farm()


def current_tenant(request: Request, farm: Annotated[Farm, Depends(get_farm)]) -> Tenant:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key:
        raise NotAuthenticated()
    with farm.sessions() as session:
        tenant = tenant_for_key(session, key.strip())
    if tenant is None:
        raise NotAuthenticated("the API key is not valid")
    return tenant


FarmDep = Annotated[Farm, Depends(get_farm)]
TenantDep = Annotated[Tenant, Depends(current_tenant)]
