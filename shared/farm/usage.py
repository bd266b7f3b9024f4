"""A tenant's use of the farm per UTC day (``tenant_usage``): the characters it submitted,
counted as they are accepted (its daily limit reads them), and what its jobs cost — audio,
engine and CPU seconds and bytes stored — added when a job ends.

A job's costs are summed on its row as its chunks and files are made (``shared.infra.costs``);
when it ends (succeeds, fails or is cancelled) what the tenant's usage does not hold of them
yet goes to the day it ended, and the job remembers what it has given (``job.billed``): a
chapter redone later adds only what the redo cost, on the day that ends it. One statement per
job's end, none per chunk: no row that every decode of a tenant would write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.audio import SAMPLE_RATE
from shared.infra.models import Job, Tenant, TenantUsage, utcnow


@dataclass(frozen=True)
class Usage:
    """Use of the farm over some time (a day, a job, a tenant's whole history)."""

    chars: int = 0
    audio_s: float = 0.0
    engine_s: float = 0.0
    cpu_s: float = 0.0
    stored_bytes: int = 0

    def __sub__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


USAGE_COLUMNS = tuple(f.name for f in fields(Usage))


def add_usage(session: Session, tenant_id: uuid.UUID, day: date, used: Usage) -> None:
    """Add ``used`` to the tenant's day, in the caller's transaction."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    add = dialect.insert(TenantUsage).values(tenant_id=tenant_id, day=day, **asdict(used))
    add = add.on_conflict_do_update(
        index_elements=[TenantUsage.tenant_id, TenantUsage.day],
        set_={name: getattr(TenantUsage, name) + add.excluded[name] for name in USAGE_COLUMNS},
    )
    session.execute(add)


def job_usage(job: Job) -> Usage:
    """What the job has cost so far (its characters are counted when it is accepted)."""
    return Usage(
        audio_s=job.audio_samples / SAMPLE_RATE,
        engine_s=job.engine_s,
        cpu_s=job.decode_cpu_s + job.stitch_cpu_s + job.encode_cpu_s,
        stored_bytes=job.stored_bytes,
    )


COST_COLUMNS = ("engine_s", "decode_cpu_s", "stitch_cpu_s", "encode_cpu_s", "stored_bytes")


def cost_json(column: Callable[[str], Any]) -> dict[str, Any]:
    """A job's or chapter's costs as its JSON shows them, from its columns (``column(name)``)."""
    return {
        "engine_s": round(column("engine_s") or 0.0, 3),
        "cpu_s": {
            kind: round(column(f"{kind}_cpu_s") or 0.0, 3)
            for kind in ("decode", "stitch", "encode")
        },
        "stored_bytes": int(column("stored_bytes") or 0),
    }


def bill_job(session: Session, job_id: uuid.UUID) -> None:
    """The job has ended: what its tenant's usage does not hold yet of its costs goes to
    today (UTC), in the caller's transaction."""
    job = session.execute(select(Job).where(Job.id == job_id).with_for_update()).scalar_one()
    cost = job_usage(job)
    given = Usage(**(job.billed or {}))
    add_usage(session, job.tenant_id, utcnow().date(), cost - given)
    session.execute(update(Job).where(Job.id == job_id).values(billed=asdict(cost)))


def usage_by_day(
    session: Session, tenant_id: uuid.UUID, first: date, last: date
) -> list[tuple[date, Usage]]:
    """The tenant's days from ``first`` to ``last`` (UTC, both included) with any use."""
    rows = session.execute(
        select(TenantUsage.day, *(getattr(TenantUsage, name) for name in USAGE_COLUMNS))
        .where(
            TenantUsage.tenant_id == tenant_id,
            TenantUsage.day >= first,
            TenantUsage.day <= last,
        )
        .order_by(TenantUsage.day)
    )
    return [(day, Usage(*values)) for day, *values in rows]


def usage_by_tenant(session: Session) -> dict[str, Usage]:
    """Every tenant's use over its whole history (Prometheus's counters)."""
    rows = session.execute(
        select(Tenant.name, *(func.sum(getattr(TenantUsage, n)) for n in USAGE_COLUMNS))
        .join(TenantUsage, TenantUsage.tenant_id == Tenant.id)
        .group_by(Tenant.name)
    )
    return {name: Usage(*(v or 0 for v in values)) for name, *values in rows}
