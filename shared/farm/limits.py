"""A tenant's limits: characters per UTC day (counted in Postgres, with the job that spends
them), API requests per second (counted in Redis, shared by every api process), and jobs
running at once (kept by the dispatcher, ``shared.farm.dispatch``: more wait, queued).

Each limit is the farm's setting (``LYRE_LIMITS__*``) unless the tenant has its own
(``lyre tenants set``); 0 means none.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, cast

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.farm.usage import Usage, add_usage
from shared.infra.models import Tenant, TenantUsage, utcnow
from shared.infra.settings import LimitSettings

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    from redis.commands.core import AsyncScript, Script


class LimitReached(Exception):
    """A tenant's limit refused a request; ``retry_after_s`` says when to try again."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DailyLimitReached(LimitReached):
    """The tenant's characters for today are spent."""


class TooManyRequests(LimitReached):
    """The tenant sends API requests faster than its limit."""


@dataclass(frozen=True)
class Limits:
    running_jobs: int
    chars_per_day: int
    requests_per_s: float
    request_burst: int


def limits_for(tenant: Tenant, farm: LimitSettings) -> Limits:
    """The tenant's own limits where it has them, else the farm's."""

    def own(value: float | None, default: float) -> float:
        return default if value is None else value

    return Limits(
        running_jobs=int(own(tenant.running_jobs, farm.running_jobs)),
        chars_per_day=int(own(tenant.chars_per_day, farm.chars_per_day)),
        requests_per_s=own(tenant.requests_per_s, farm.requests_per_s),
        request_burst=farm.request_burst,
    )


# --- characters per day ---------------------------------------------------------------------


def count_chars(session: Session, tenant_id: uuid.UUID, chars: int, per_day: int) -> None:
    """Add ``chars`` to the tenant's count for today, in the caller's transaction, unless that
    would pass ``per_day`` (0: no limit, every submission counted for its usage): one INSERT …
    ON CONFLICT DO UPDATE … WHERE, so that two submissions at once cannot both take the last
    of the day."""
    now = utcnow()
    if not per_day:
        add_usage(session, tenant_id, now.date(), Usage(chars=chars))
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    add = dialect.insert(TenantUsage).values(tenant_id=tenant_id, day=now.date(), chars=chars)
    add = add.on_conflict_do_update(
        index_elements=[TenantUsage.tenant_id, TenantUsage.day],
        set_={"chars": TenantUsage.chars + add.excluded.chars},
        where=TenantUsage.chars + add.excluded.chars <= bindparam("limit"),
    ).returning(TenantUsage.chars)
    counted = session.execute(add, {"limit": per_day}).first() if chars <= per_day else None
    if counted is None:
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        raise DailyLimitReached(
            f"this would pass the tenant's {per_day} characters a day (UTC); "
            f"the count starts again at {midnight.isoformat()}",
            (midnight - now).total_seconds(),
        )


# --- requests per second --------------------------------------------------------------------

# GCRA (the generic cell rate algorithm): the key holds the theoretical arrival time of the next
# request, in microseconds on Redis's clock (one clock for every api process). A request is
# allowed while that time is at most ``burst`` intervals ahead of now; each pushes it one
# interval on. Returns 0 (allowed) or the microseconds to wait.
_GCRA = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return wait end
tat = tat + interval
redis.call('SET', KEYS[1], tat, 'PX', math.ceil((tat - now) / 1000) + 1)
return 0
"""


@cache
def _gcra(client: redis.Redis | redis.asyncio.Redis) -> Script | AsyncScript:
    """The script, for this client: sent by its SHA-1 (EVALSHA), loaded once."""
    return client.register_script(_GCRA)


def take_request(client: redis.Redis, key: str, limits: Limits) -> None:
    """Count one API request of a tenant (``key``: its own); :class:`TooManyRequests` past its
    rate, with the seconds until one more is allowed."""
    if limits.requests_per_s:
        script = cast("Script", _gcra(client))
        _refuse_after(int(script(keys=[key], args=_gcra_args(limits))), limits)


async def take_request_on_loop(client: redis.asyncio.Redis, key: str, limits: Limits) -> None:
    """:func:`take_request` through an asyncio client."""
    if limits.requests_per_s:
        script = cast("AsyncScript", _gcra(client))
        _refuse_after(int(await script(keys=[key], args=_gcra_args(limits))), limits)


def _gcra_args(limits: Limits) -> list[int]:
    """The interval between requests and the tolerance of a burst, in microseconds."""
    interval = 1_000_000 / limits.requests_per_s
    return [round(interval), round(interval * max(limits.request_burst - 1, 0))]


def _refuse_after(wait_us: int, limits: Limits) -> None:
    if wait_us > 0:
        raise TooManyRequests(
            f"more than {limits.requests_per_s:g} requests a second "
            f"(bursts of {limits.request_burst})",
            math.ceil(wait_us / 1_000_000),
        )
