"""``lyre usage``: what each tenant used of the farm per UTC day (characters submitted; audio,
engine and CPU seconds and bytes of the jobs that ended that day), read from its database."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from typing import TYPE_CHECKING

from cli.admin import database
from cli.synth import UsageError

if TYPE_CHECKING:
    from shared.farm.usage import Usage

MAX_DAYS = 366
COLUMNS = f"{'tenant':24} {'day':10} {'characters':>11} {'audio h':>8} {'engine h':>9} "
COLUMNS += f"{'CPU h':>8} {'MB stored':>10}"


def add_usage_command(commands: argparse._SubParsersAction) -> None:
    usage = commands.add_parser(
        "usage", help="each tenant's characters, audio, engine and CPU time and bytes per day"
    )
    usage.add_argument("--tenant", help="one tenant (default: every tenant)")
    usage.add_argument("--from", dest="first", type=_day, help="first UTC day (YYYY-MM-DD)")
    usage.add_argument(
        "--to", dest="last", type=_day, help="last UTC day, included (default: today)"
    )


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day as YYYY-MM-DD") from None


def usage(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from shared.farm.usage import Usage, usage_by_day
    from shared.infra.models import Tenant, utcnow

    last = args.last or utcnow().date()
    first = args.first or last - timedelta(days=29)
    if first > last:
        raise UsageError(f"--from ({first}) is after --to ({last})")
    if (last - first).days >= MAX_DAYS:
        raise UsageError(f"ask for at most {MAX_DAYS} days at a time")
    with database() as session:
        query = select(Tenant.id, Tenant.name).order_by(Tenant.name)
        if args.tenant is not None:
            query = query.where(Tenant.name == args.tenant)
        tenants = session.execute(query).all()
        if args.tenant is not None and not tenants:
            raise UsageError(f"no tenant named {args.tenant!r}")
        print(f"from {first} to {last} (UTC)")
        print(COLUMNS)
        for tenant_id, name in tenants:
            days = usage_by_day(session, tenant_id, first, last)
            for day, used in days:
                print(_row(name, str(day), used))
            if days:
                print(_row(name, "total", sum((used for _, used in days), Usage())))
    return 0


def _row(tenant: str, day: str, used: Usage) -> str:
    return (
        f"{tenant:24} {day:10} {used.chars:11d} {used.audio_s / 3600:8.3f} "
        f"{used.engine_s / 3600:9.4f} {used.cpu_s / 3600:8.4f} {used.stored_bytes / 1e6:10.1f}"
    )
