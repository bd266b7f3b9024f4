"""What a tenant reads and sets of its own, beside its jobs: its lexicon, its limits and its
webhooks' signing secret."""

from __future__ import annotations

from sqlalchemy import update

from api.errors import InvalidInput
from api.schemas import LimitsOut
from shared.farm import tenants
from shared.farm.context import FarmContext
from shared.farm.limits import limits_for
from shared.farm.retention import periods
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


def rotate_webhook_secret(farm: FarmContext, tenant: Tenant) -> str:
    """A new secret: every delivery sent from now on, retries included, is signed with it."""
    with farm.sessions() as session:
        return tenants.rotate_webhook_secret(session, tenant.id)
