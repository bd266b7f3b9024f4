"""The ``lyre`` command line."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import get_args

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.infra.settings import Settings, SpeakingEngine, UnsupportedSetting, get_settings
from shared.local.synth import UsageError
from shared.local.synth import add_arguments as add_synth_arguments
from shared.local.synth import run as run_synth

ENGINES = ("auto", *get_args(SpeakingEngine))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lyre", description="Long-form speech synthesis.")
    commands = top.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="turn a book or text into audio files, locally")
    add_synth_arguments(synth, ENGINES)
    keys = commands.add_parser("keys", help="manage API keys of the farm")
    create = keys.add_subparsers(dest="action", required=True).add_parser(
        "create", help="create a key (and the tenant, if new); prints the key once"
    )
    create.add_argument("--tenant", required=True, help="tenant name")
    add_tenant_commands(commands)
    models = commands.add_parser("models", help="manage model weights")
    models.add_subparsers(dest="action", required=True).add_parser(
        "pull", help="download Orpheus and SNAC into the local cache"
    )
    return top


def apply_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    updates = {k: v for k, v in (("engine", args.engine), ("voice", args.voice)) if v}
    if args.max_chars is not None:
        if args.max_chars < 40:
            raise UsageError("--max-chars must be at least 40")
        updates["chunking"] = settings.chunking.model_copy(update={"max_chars": args.max_chars})
    return settings.model_copy(update=updates)


def synth(args: argparse.Namespace) -> int:
    return run_synth(apply_overrides(get_settings(), args), args)


def pull(_: argparse.Namespace) -> int:
    from shared.speech.weights import pull_models

    for path in pull_models(get_settings().orpheus):
        print(path)
    return 0


def add_tenant_commands(commands: argparse._SubParsersAction) -> None:
    tenants = commands.add_parser("tenants", help="tenants' shares of the GPUs and limits")
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
    from shared.farm.tenants import TENANT_SETTINGS, TenantNotFound, set_tenant
    from shared.infra.models import Tenant

    settings = get_settings().limits
    if args.action == "secret":
        return tenant_secret(args)
    with _database() as session:
        if args.action == "set":
            given = {f: getattr(args, f) for f in TENANT_SETTINGS if getattr(args, f) is not None}
            if not given:
                raise UsageError(
                    "say what to set: --weight, --running-jobs, --chars-per-day or --requests-per-s"
                )
            changes = {f: None if v is DEFAULT else v for f, v in given.items()}
            try:
                found = [set_tenant(session, args.name, changes)]
            except TenantNotFound as exc:
                raise UsageError(str(exc)) from None
        else:
            found = list(session.scalars(select(Tenant).order_by(Tenant.name)))
        print(f"{'tenant':24} {'weight':>7} {'jobs':>5} {'chars/day':>12} {'req/s':>7}")
        for tenant in found:
            limits = limits_for(tenant, settings)
            jobs = _own(tenant.running_jobs, limits.running_jobs)
            chars = _own(tenant.chars_per_day, limits.chars_per_day)
            rate = _own(tenant.requests_per_s, limits.requests_per_s)
            print(f"{tenant.name:24} {tenant.weight:7g} {jobs:>5} {chars:>12} {rate:>7}")
    return 0


def tenant_secret(args: argparse.Namespace) -> int:
    from shared.farm.tenants import rotate_webhook_secret
    from shared.infra.models import Tenant

    with _database() as session:
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
def _database() -> Iterator[Session]:
    from sqlalchemy.exc import SQLAlchemyError

    from shared.infra.db import session_scope

    try:
        with session_scope() as session:
            yield session
    except SQLAlchemyError as exc:
        raise FarmUnavailable(f"cannot reach the database: {exc.__class__.__name__}") from exc


def create_key(args: argparse.Namespace) -> int:
    from shared.farm.tenants import create_key as new_key
    from shared.infra.models import Tenant

    name = args.tenant.strip()
    if not name or len(name) > 200:
        raise UsageError("--tenant must be 1 to 200 characters")
    with _database() as session:
        known = session.scalar(select(func.count()).where(Tenant.name == name))
        tenant, key = new_key(session, name)
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


COMMANDS = {"synth": synth, "models": pull, "keys": create_key, "tenants": tenants}


def bad_settings(exc: ValidationError) -> str:
    """A settings error as the ``LYRE_*`` variables to fix, one clause each."""
    return "; ".join(
        f"LYRE_{'__'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
        for error in exc.errors()
    )


def main(argv: list[str] | None = None) -> int:
    from shared.speech.engine import EngineError
    from shared.speech.weights import ModelNotFound

    args = parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        return command(args)
    except (UsageError, UnsupportedSetting) as exc:
        print(f"lyre: error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        print(f"lyre: error: {bad_settings(exc)}", file=sys.stderr)
        return 2
    except (ModelNotFound, EngineError, FarmUnavailable) as exc:
        print(f"lyre: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
