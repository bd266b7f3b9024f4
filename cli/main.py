"""The ``lyre`` command line: ``lyre synth`` (embedded mode, ``cli.runner``), ``lyre models``,
and, on a farm's database, ``lyre keys`` and ``lyre tenants`` (``cli.admin``) and ``lyre usage``
(``cli.usage``)."""

from __future__ import annotations

import argparse
import sys
from typing import get_args

from pydantic import ValidationError

from cli.admin import FarmUnavailable, add_key_commands, add_tenant_commands, keys, tenants
from cli.synth import UsageError
from cli.synth import add_arguments as add_synth_arguments
from cli.synth import run as run_synth
from cli.usage import add_usage_command, usage
from shared.infra.settings import Settings, SpeakingEngine, UnsupportedSetting, get_settings

ENGINES = ("auto", *get_args(SpeakingEngine))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lyre", description="Long-form speech synthesis.")
    commands = top.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="turn a book or text into audio files, locally")
    add_synth_arguments(synth, ENGINES)
    add_key_commands(commands)
    add_tenant_commands(commands)
    add_usage_command(commands)
    models = commands.add_parser("models", help="manage model weights")
    models.add_subparsers(dest="action", required=True).add_parser(
        "pull",
        help="download Orpheus and SNAC (and Whisper, where LYRE_CHECKS__TRANSCRIBE is on) "
        "into the local cache",
    )
    return top


def apply_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    updates: dict[str, object] = {"engine": args.engine} if args.engine else {}
    if args.max_chars is not None:
        if args.max_chars < 40:
            raise UsageError("--max-chars must be at least 40")
        updates["chunking"] = settings.chunking.model_copy(update={"max_chars": args.max_chars})
    return settings.model_copy(update=updates)


def synth(args: argparse.Namespace) -> int:
    return run_synth(apply_overrides(get_settings(), args), args)


def pull(_: argparse.Namespace) -> int:
    from shared.speech.weights import pull_models

    settings = get_settings()
    for path in pull_models(settings.orpheus):
        print(path)
    if settings.checks.transcribe:  # the transcription check's Whisper, for the cpu workers
        from shared.checks.transcript import pull_transcriber

        print(pull_transcriber(settings.checks.whisper_model))
    return 0


COMMANDS = {"synth": synth, "models": pull, "keys": keys, "tenants": tenants, "usage": usage}


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
