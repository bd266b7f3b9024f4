"""The ``lyre`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from shared.audio.encode import FORMATS
from shared.infra.settings import Settings, SpeakingEngine, UnsupportedSetting, get_settings
from shared.text.voices import VOICES

ENGINES = ("auto", *get_args(SpeakingEngine))
MAX_INPUT_BYTES = 20 * 1024 * 1024


class UsageError(Exception):
    """A bad argument or input: reported in one line with exit code 2."""


def read_text(source: str) -> str:
    """Read the input text from a path or ``-``, refusing what is not text."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except FileNotFoundError:
        raise UsageError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{source}: is a directory, not a text file") from None
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror}") from None
    if len(data) > MAX_INPUT_BYTES:
        raise UsageError(f"{source}: larger than {MAX_INPUT_BYTES // 2**20} MiB")
    if b"\0" in data:
        raise UsageError(f"{source}: looks like binary data, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None
    if not text.strip():
        raise UsageError(f"{source}: the text is empty")
    return text


def output_format(output: Path, requested: str | None) -> str:
    if requested:
        return requested
    suffix = output.suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise UsageError(
        f"{output}: cannot tell the format from the name; use --format ({', '.join(FORMATS)})"
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="lyre", description="Long-form speech synthesis.")
    commands = top.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="turn a text file into an audio file, locally")
    synth.add_argument("input", help="text or Markdown file (- for standard input)")
    synth.add_argument("-o", "--output", required=True, type=Path, help="audio file to write")
    synth.add_argument("--voice", choices=VOICES, help="default voice (default: tara)")
    synth.add_argument("--engine", choices=ENGINES, help="speech engine (default: auto)")
    synth.add_argument("--format", choices=tuple(FORMATS), help="default: from the file name")
    synth.add_argument("--title", help="title written into the file's metadata")
    synth.add_argument("--max-chars", type=int, help="largest chunk, in characters")
    keys = commands.add_parser("keys", help="manage API keys of the farm")
    create = keys.add_subparsers(dest="action", required=True).add_parser(
        "create", help="create a key (and the tenant, if new); prints the key once"
    )
    create.add_argument("--tenant", required=True, help="tenant name")
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
    from tqdm import tqdm

    from shared.local.runner import EmbeddedRunner, SynthJob
    from shared.speech.factory import resolve_engine_name
    from shared.text.chunking import chunk_text

    settings = apply_overrides(get_settings(), args)
    fmt = output_format(args.output, args.format)
    if not args.output.parent.is_dir():
        raise UsageError(f"{args.output.parent}: no such directory")
    chunked = chunk_text(read_text(args.input), settings.chunking.max_chars)
    if not chunked.spans:
        raise UsageError(f"{args.input}: nothing to say (no words in the text)")
    engine, note = resolve_engine_name(settings)
    if note:
        print(note, file=sys.stderr)
    runner = EmbeddedRunner(settings, engine)
    try:
        with tqdm(total=len(chunked.spans), unit="chunk", desc="synth", file=sys.stderr) as bar:
            job = SynthJob(chunked, settings.voice, fmt, args.output, args.title)
            summary = runner.run(job, on_chunk=lambda _: bar.update())
    finally:
        runner.close()
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    minutes, seconds = divmod(summary.audio_seconds, 60)
    print(
        f"wrote {args.output}: {summary.chunks} chunks, {int(minutes)}:{seconds:04.1f} of audio "
        f"in {summary.wall_seconds:.1f} s (real-time factor {summary.real_time_factor:.2f}, "
        f"engine {summary.engine})"
    )
    return 0


def pull(_: argparse.Namespace) -> int:
    from shared.speech.weights import pull_models

    for path in pull_models(get_settings().orpheus):
        print(path)
    return 0


def create_key(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from shared.farm.tenants import create_key as new_key
    from shared.infra.db import session_scope

    name = args.tenant.strip()
    if not name or len(name) > 200:
        raise UsageError("--tenant must be 1 to 200 characters")
    try:
        with session_scope() as session:
            tenant, key = new_key(session, name)
    except SQLAlchemyError as exc:
        raise FarmUnavailable(f"cannot reach the database: {exc.__class__.__name__}") from exc
    print(key)
    print(f"tenant {tenant.name} ({tenant.id}); the key is shown only once", file=sys.stderr)
    return 0


class FarmUnavailable(Exception):
    """The farm's database or services cannot be reached."""


COMMANDS = {"synth": synth, "models": pull, "keys": create_key}


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
