"""What a tenant reads and sets of its own, beside its jobs: its lexicon, its limits and its
webhooks' signing secret."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import update

from api.errors import InvalidInput
from api.progress_shapes import TenantUsageOut
from api.schemas import LimitsOut
from shared.farm import tenants
from shared.farm.context import FarmContext
from shared.farm.limits import limits_for
from shared.farm.retention import periods
from shared.farm.usage import Usage, usage_by_day
from shared.infra.models import Tenant, TenantUsage, utcnow
from shared.text.lexicon import LexiconRefused
from shared.text.lexicon import check as check_lexicon


def set_lexicon(farm: FarmContext, tenant: Tenant, entries: dict[str, str]) -> dict[str, str]:
    try:
        check_lexicon(entries)
    except LexiconRefused as exc:
        raise InvalidInput(str(exc)) from None
    with farm.sessions() as session:
        session.execute(update(Tenant).where(Tenant.id == tenant.id).values(lexicon=entries))
    return entries


def tenant_limits(farm: FarmContext, tenant: Tenant) -> LimitsOut:
    """The tenant's weight and limits in effect, what it has spent of today's, and how long its
    jobs' objects are kept."""
    limits = limits_for(tenant, farm.settings.limits)
    chunk_days, days = periods(tenant.retention_days, farm.settings.retention)
    with farm.sessions() as session:
        today = session.get(TenantUsage, (tenant.id, utcnow().date()))
    return LimitsOut(
        weight=tenant.weight,
        running_jobs=limits.running_jobs,
        chars_per_day=limits.chars_per_day,
        chars_today=today.chars if today else 0,
        requests_per_s=limits.requests_per_s,
        request_burst=limits.request_burst,
        retention_days=days,
        chunk_retention_days=chunk_days,
    )


MAX_USAGE_DAYS = 366


def tenant_usage(
    farm: FarmContext, tenant: Tenant, first: date | None, last: date | None
) -> TenantUsageOut:
    """The tenant's use from ``first`` to ``last`` (UTC days, both included; by default the 30
    days to today)."""
    last = last or utcnow().date()
    first = first or last - timedelta(days=29)
    if first > last:
        raise InvalidInput(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days >= MAX_USAGE_DAYS:
        raise InvalidInput(f"ask for at most {MAX_USAGE_DAYS} days at a time")
    with farm.sessions() as session:
        days = usage_by_day(session, tenant.id, first, last)
    total = sum((used for _, used in days), Usage())
    return TenantUsageOut.model_validate(
        {
            "tenant": tenant.name,
            "from": first,
            "to": last,
            "days": [{"day": day, **usage_out(used)} for day, used in days],
            "total": usage_out(total),
        }
    )


def usage_out(used: Usage) -> dict[str, float | int]:
    return {
        "characters": used.chars,
        "audio_s": round(used.audio_s, 3),
        "engine_s": round(used.engine_s, 3),
        "cpu_s": round(used.cpu_s, 3),
        "stored_bytes": used.stored_bytes,
    }


def rotate_webhook_secret(farm: FarmContext, tenant: Tenant) -> str:
    """A new secret: every delivery sent from now on, retries included, is signed with it."""
    with farm.sessions() as session:
        return tenants.rotate_webhook_secret(session, tenant.id)
