"""``lyre keys`` and ``lyre tenants``: the farm's API keys, and its tenants' shares, limits and
webhook signing secrets, read and changed in its database."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli.synth import UsageError
from shared.infra.settings import get_settings


def add_key_commands(commands: argparse._SubParsersAction) -> None:
    keys = commands.add_parser("keys", help="manage API keys of the farm")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser(
        "create", help="create a key (and the tenant, if new); prints the key once"
    )
    create.add_argument("--tenant", required=True, help="tenant name")
    create.add_argument("--expires-in-days", type=_days, help="the key stops working after")
    listing = actions.add_parser("list", help="every key: its tenant, prefix and state")
    listing.add_argument("--tenant", help="only this tenant's")
    revoke = actions.add_parser("revoke", help="a key stops working now")
    revoke.add_argument("prefix", help="the key's prefix, as lyre keys list shows it")
    rotate = actions.add_parser("rotate", help="a new key for the tenant; the old one stops")
    rotate.add_argument("prefix", help="the old key's prefix, as lyre keys list shows it")
    rotate.add_argument(
        "--grace-hours", type=_days, default=0.0, help="the old key keeps working so long"
    )


def _days(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not math.isfinite(number) or not 0 <= number <= 36_500:
        raise argparse.ArgumentTypeError("a duration is a number from 0 to 36500")
    return number


def keys(args: argparse.Namespace) -> int:
    from shared.farm.tenants import KeyNotFound, revoke_key, rotate_key

    if args.action == "create":
        return create_key(args)
    if args.action == "list":
        return list_keys(args)
    with database() as session:
        try:
            if args.action == "revoke":
                revoke_key(session, args.prefix)
                print(f"{args.prefix} revoked: it authenticates nothing from now on")
                return 0
            old, new = rotate_key(session, args.prefix, timedelta(hours=args.grace_hours))
        except KeyNotFound as exc:
            raise UsageError(str(exc)) from None
        until = (
            f"until {old.expires_at:%Y-%m-%d %H:%M} UTC" if old.revoked_at is None else "no more"
        )
    print(new)
    print(f"{args.prefix} works {until}; the new key is shown only once", file=sys.stderr)
    return 0


def list_keys(args: argparse.Namespace) -> int:
    from shared.infra.models import ApiKey, Tenant, utcnow

    now = utcnow()
    query = select(Tenant.name, ApiKey).join(ApiKey).order_by(Tenant.name, ApiKey.created_at)
    with database() as session:
        rows = session.execute(query.where(Tenant.name == args.tenant) if args.tenant else query)
        print(f"{'tenant':24} {'key':12} {'created':16}  state")
        for name, key in rows.all():
            if key.revoked_at:
                state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}"
            elif key.expires_at and key.expires_at <= now:
                state = f"expired {key.expires_at:%Y-%m-%d %H:%M}"
            else:
                state = f"until {key.expires_at:%Y-%m-%d %H:%M}" if key.expires_at else "active"
            print(f"{name:24} {key.prefix:12} {key.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def add_tenant_commands(commands: argparse._SubParsersAction) -> None:
    tenants = commands.add_parser(
        "tenants", help="tenants' shares of the GPUs, limits and retention periods"
    )
    actions = tenants.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every tenant, its weight and limits in effect")
    secret = actions.add_parser(
        "secret", help="print the secret a tenant's webhooks are signed with (or a new one)"
    )
    secret.add_argument("name", help="tenant name")
    secret.add_argument(
        "--rotate", action="store_true", help="make a new secret: deliveries from now on use it"
    )
    change = actions.add_parser(
        "set",
        help="set a tenant's weight or limits ('default' puts a limit back to the farm's)",
    )
    change.add_argument("name", help="tenant name")
    change.add_argument("--weight", type=_weight, help="share of the GPUs, by ratio (default 1)")
    change.add_argument("--running-jobs", type=_limit(int), help="jobs at once (0: no limit)")
    change.add_argument("--chars-per-day", type=_limit(int), help="per UTC day (0: no limit)")
    change.add_argument("--requests-per-s", type=_limit(float), help="API rate (0: no limit)")
    change.add_argument(
        "--retention-days",
        type=_limit(int),
        help="days a job's files are kept after it ends (0: for ever); its chunk audio, which a "
        "chapter's redo needs, at most the farm's retention.chunk_days",
    )


def _weight(value: str) -> float:
    try:
        weight = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 < weight <= 1000:  # NaN fails this too
        raise argparse.ArgumentTypeError("a weight is above 0 and at most 1000")
    return weight


def _limit(kind: type) -> Callable[[str], object]:
    def parse(value: str) -> object:
        if value == "default":
            return DEFAULT
        try:
            number = kind(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number or 'default'") from None
        if not math.isfinite(number) or number < 0:
            raise argparse.ArgumentTypeError("a limit is a number, 0 or more")
        return number

    return parse


DEFAULT = object()  # a limit put back to the farm's setting


def tenants(args: argparse.Namespace) -> int:
    from shared.farm.limits import limits_for
    from shared.farm.retention import periods
    from shared.farm.tenants import TENANT_SETTINGS, TenantNotFound, set_tenant
    from shared.infra.models import Tenant

    settings = get_settings()
    if args.action == "secret":
        return tenant_secret(args)
    with database() as session:
        if args.action == "set":
            given = {f: getattr(args, f) for f in TENANT_SETTINGS if getattr(args, f) is not None}
            if not given:
                raise UsageError(
                    "say what to set: --weight, --running-jobs, --chars-per-day, "
                    "--requests-per-s or --retention-days"
                )
            changes = {f: None if v is DEFAULT else v for f, v in given.items()}
            try:
                found = [set_tenant(session, args.name, changes)]
            except TenantNotFound as exc:
                raise UsageError(str(exc)) from None
        else:
            found = list(session.scalars(select(Tenant).order_by(Tenant.name)))
        print(f"{'tenant':24} {'weight':>7} {'jobs':>5} {'chars/day':>12} {'req/s':>7} {'days':>5}")
        for tenant in found:
            limits = limits_for(tenant, settings.limits)
            jobs = _own(tenant.running_jobs, limits.running_jobs)
            chars = _own(tenant.chars_per_day, limits.chars_per_day)
            rate = _own(tenant.requests_per_s, limits.requests_per_s)
            days = _own(
                tenant.retention_days, periods(tenant.retention_days, settings.retention)[1]
            )
            print(f"{tenant.name:24} {tenant.weight:7g} {jobs:>5} {chars:>12} {rate:>7} {days:>5}")
    return 0


def tenant_secret(args: argparse.Namespace) -> int:
    from shared.farm.tenants import rotate_webhook_secret
    from shared.infra.models import Tenant

    with database() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == args.name))
        if tenant is None:
            raise UsageError(f"no tenant named {args.name!r}")
        secret = rotate_webhook_secret(session, tenant.id) if args.rotate else tenant.webhook_secret
    print(secret)
    if args.rotate:
        print(f"tenant {args.name}: deliveries from now on are signed with it", file=sys.stderr)
    return 0


def _own(own: float | None, effective: float) -> str:
    """A limit in effect, marked * where it is the farm's setting (0 shown as none)."""
    shown = f"{effective:g}" if effective else "none"
    return shown if own is not None else f"{shown}*"


@contextmanager
def database() -> Iterator[Session]:
    from sqlalchemy.exc import SQLAlchemyError

    from shared.infra.db import session_scope

    try:
        with session_scope() as session:
            yield session
    except SQLAlchemyError as exc:
        raise FarmUnavailable(f"cannot reach the database: {exc.__class__.__name__}") from exc


def create_key(args: argparse.Namespace) -> int:
    from shared.farm.tenants import create_key as new_key
    from shared.infra.models import Tenant, utcnow

    name = args.tenant.strip()
    if not name or len(name) > 200:
        raise UsageError("--tenant must be 1 to 200 characters")
    expires = utcnow() + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    with database() as session:
        known = session.scalar(select(func.count()).where(Tenant.name == name))
        tenant, key = new_key(session, name, expires)
    print(key)
    print(f"tenant {tenant.name} ({tenant.id}); the key is shown only once", file=sys.stderr)
    if not known:  # its receivers need the secret to verify what it is sent
        print(
            f"its webhooks are signed with {tenant.webhook_secret} "
            f"(again: lyre tenants secret {tenant.name})",
            file=sys.stderr,
        )
    return 0


class FarmUnavailable(Exception):
    """The farm's database or services cannot be reached."""
