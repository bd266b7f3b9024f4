"""``lyre synth``: any input (EPUB, HTML, Markdown, text) to audio files, in one process."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cli.preview import print_preview
from shared.audio.encode import FORMATS, AudioFormat
from shared.audio.presets import PRESETS
from shared.farm.seeds import SEED_LIMIT
from shared.infra.settings import Settings
from shared.text.voices import DEFAULT_VOICE, VOICES

if TYPE_CHECKING:
    from shared.farm.intake import Intake


class UsageError(Exception):
    """A bad argument or input: reported in one line with exit code 2."""


def add_arguments(synth: argparse.ArgumentParser, engines: tuple[str, ...]) -> None:
    synth.add_argument("input", help="EPUB, HTML, Markdown or text file (- for standard input)")
    synth.add_argument("-o", "--output", type=Path, help="audio file to write")
    synth.add_argument(
        "--dry-run",
        action="store_true",
        help="make nothing: print, a line a chunk, the text the engine would be asked to say",
    )
    synth.add_argument(
        "--json",
        action="store_true",
        help="with --dry-run: a JSON object a line, with the chunk's chapter, voice and the "
        "author's words",
    )
    synth.add_argument(
        "--voice", choices=VOICES, default=DEFAULT_VOICE, help=f"default: {DEFAULT_VOICE}"
    )
    synth.add_argument("--engine", choices=engines, help="speech engine (default: auto)")
    synth.add_argument("--format", choices=tuple(FORMATS), help="default: from the file name")
    synth.add_argument("--preset", choices=PRESETS, help="acx, podcast or audiobook")
    synth.add_argument("--title", help="title written into the files' tags (default: the book's)")
    synth.add_argument("--author", help="author written into the tags (default: the book's)")
    synth.add_argument("--max-chars", type=int, help="largest chunk, in characters")
    synth.add_argument("--lexicon", type=Path, help='JSON file of {"word": "respelling"}')
    synth.add_argument("--opening-credits", help="text read as a chapter of its own, first")
    synth.add_argument("--closing-credits", help="text read as a chapter of its own, last")
    synth.add_argument(
        "--chapters",
        action="store_true",
        help="also write one file per chapter and chapters.json into OUTPUT's stem + -chapters/, "
        "and the M4B beside OUTPUT",
    )
    synth.add_argument(
        "--captions", action="store_true", help="also write OUTPUT's stem + .vtt and .srt"
    )
    synth.add_argument(
        "--read-along",
        action="store_true",
        help="also write OUTPUT's stem + .epub: the book's text with the narration, sentence "
        "by sentence (EPUB 3 Media Overlays; an EPUB's own pages)",
    )
    synth.add_argument(
        "--library",
        type=Path,
        metavar="DIR",
        help="also shelve the book in the library folder DIR as library servers (audiobookshelf) "
        "read it: DIR/Author/Title/ with the audio, cover, metadata.json, metadata.opf, "
        "desc.txt and reader.txt",
    )
    synth.add_argument(
        "--redo-chunk",
        type=int,
        metavar="N",
        help="make chunk N of the finished run in LYRE_WORK_DIR again (the summary names the "
        "chunks that need a listen), then its chapter's file and the book's; every other "
        "chunk's audio stays as it was",
    )
    synth.add_argument("--redo-text", help="with --redo-chunk: its corrected words")
    synth.add_argument(
        "--redo-voice", choices=VOICES, help="with --redo-chunk: another voice for it"
    )
    synth.add_argument(
        "--seed",
        type=seed,
        help=f"0 to {SEED_LIMIT - 1}: the same input, settings and seed give the same bytes "
        "(default: seeds from the input and settings)",
    )


def seed(given: str) -> int:
    """``--seed``'s value, in the range a job's seed has."""
    try:
        value = int(given)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {given!r}") from None
    if not 0 <= value < SEED_LIMIT:
        raise argparse.ArgumentTypeError(f"{value} is not between 0 and {SEED_LIMIT - 1}")
    return value


def read_input(source: str, limit: int) -> bytes:
    """The input's bytes from a path or ``-``, no more than one past ``limit`` (the intake
    refuses it then); what they are is told by content later."""
    try:
        if source == "-":
            return sys.stdin.buffer.read(limit + 1)
        with Path(source).open("rb") as file:
            return file.read(limit + 1)
    except FileNotFoundError:
        raise UsageError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{source}: is a directory, not a text file") from None
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror}") from None


def output_format(
    output: Path, requested: AudioFormat | None, preset: str | None
) -> AudioFormat | None:
    """--format, else the file's extension, else the preset's choice."""
    if requested:
        return requested
    suffix = output.suffix.lower().lstrip(".")
    for fmt in FORMATS:
        if suffix == fmt:
            return fmt
    if preset:
        return None
    raise UsageError(
        f"{output}: cannot tell the format from the name; use --format ({', '.join(FORMATS)})"
    )


def read_lexicon(path: Path | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the lexicon: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: the lexicon is not JSON: {exc.msg}") from None
    if not isinstance(entries, dict):
        raise UsageError(f'{path}: the lexicon must be a JSON object {{"word": "respelling"}}')
    return entries


def run(settings: Settings, args: argparse.Namespace) -> int:
    taken = take_in_args(settings, args)
    if args.dry_run:
        print_preview(taken.preview(), args.json)
        for warning in taken.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        return 0
    from tqdm import tqdm

    from cli.runner import EmbeddedRunner, RedoRefused, SynthJob

    if taken.engine_note:
        print(taken.engine_note, file=sys.stderr)
    redo = chunk_redo(settings, args)
    runner = EmbeddedRunner(settings, taken.request.engine)
    with tempfile.TemporaryDirectory(prefix="lyre-files-") as extras:
        try:
            chunks = len(taken.chunked.spans)
            with tqdm(total=chunks, unit="chunk", desc="synth", file=sys.stderr) as bar:
                job = SynthJob(taken, args.output, Path(extras), redo, args.library)
                summary = runner.run(job, on_chunk=lambda _: bar.update())
        except RedoRefused as exc:
            raise UsageError(f"--redo-chunk {args.redo_chunk}: {exc}") from None
        finally:
            runner.close()
        _keep(summary.files, args, chapters=args.chapters or args.preset == "acx")
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    _report(summary, args)
    return 0


def chunk_redo(settings: Settings, args: argparse.Namespace) -> Any:
    """``--redo-chunk`` and its text and voice, or None; it needs the run's work folder."""
    from cli.runner import ChunkRedo

    if args.redo_chunk is None:
        if args.redo_text is not None or args.redo_voice is not None:
            raise UsageError("--redo-text and --redo-voice go with --redo-chunk")
        return None
    if settings.work_dir is None:
        raise UsageError("--redo-chunk needs LYRE_WORK_DIR: the folder of the run it redoes")
    return ChunkRedo(args.redo_chunk, args.redo_text, args.redo_voice)


def take_in_args(settings: Settings, args: argparse.Namespace) -> Intake:
    """The input and the arguments through the farm's intake (``shared.farm.intake``)."""
    from shared.farm.intake import InputRefused, Submission, take_in

    if args.json and not args.dry_run:
        raise UsageError("--json goes with --dry-run")
    fmt = None
    if not args.dry_run:
        if args.output is None:
            raise UsageError("the output is missing: -o FILE (or --dry-run to make nothing)")
        fmt = output_format(args.output, args.format, args.preset)
        if not args.output.parent.is_dir():
            raise UsageError(f"{args.output.parent}: no such directory")
        if args.library is not None and not args.library.is_dir():
            raise UsageError(f"--library {args.library}: no such directory")
    submission = Submission(
        data=read_input(args.input, settings.farm.max_upload_bytes),
        filename=args.input,
        voice=args.voice,
        format=fmt or args.format,
        preset=args.preset,
        title=args.title,
        author=args.author,
        lexicon=read_lexicon(args.lexicon),
        opening_credits=args.opening_credits,
        closing_credits=args.closing_credits,
        seed=args.seed,
        choices={"read_along": True} if args.read_along else {},
    )
    try:
        return take_in(settings, submission)
    except InputRefused as exc:
        raise UsageError(f"{args.input}: {exc}") from None


def _keep(files: dict[str, Path], args: argparse.Namespace, chapters: bool) -> None:
    """Copy the files asked for beside the output."""
    stem = args.output.with_suffix("")
    if args.captions:
        for name in ("captions.vtt", "captions.srt"):
            shutil.copyfile(files[name], stem.with_suffix("." + name.split(".")[1]))
    if args.read_along:
        shutil.copyfile(files["book.epub"], stem.with_suffix(".epub"))
    if chapters:
        if "book.m4b" in files and args.output.suffix.lower() != ".m4b":  # the chaptered book
            shutil.copyfile(files["book.m4b"], stem.with_suffix(".m4b"))
        folder = Path(f"{stem}-chapters")
        folder.mkdir(exist_ok=True)
        for name, path in files.items():
            if name.startswith("chapter"):  # chapter-NNN.* and chapters.json
                shutil.copyfile(path, folder / name)
    suspects = {name: path for name, path in files.items() if name.startswith("suspect-")}
    if suspects:  # to listen to, whatever else was asked for
        folder = Path(f"{stem}-suspects")
        folder.mkdir(exist_ok=True)
        for name, path in suspects.items():
            shutil.copyfile(path, folder / name)


def _report(summary: Any, args: argparse.Namespace) -> None:
    if summary.resumed_chunks:
        print(f"resumed: {summary.resumed_chunks} chunks were already done", file=sys.stderr)
    for chapter in summary.chapters:
        if chapter["acx"] is not None:
            failed = [k for k, c in chapter["acx"]["checks"].items() if not c["passed"]]
            verdict = "passes ACX" if not failed else "fails ACX: " + ", ".join(failed)
            print(f"chapter {chapter['number']} ({chapter['title']}): {verdict}")
        for suspect in (chapter["checks"] or {}).get("suspects", []):
            print(
                f"needs a listen: chunk {suspect['chunk']} of chapter {chapter['number']} "
                f"({suspect['reason']}): {args.output.with_suffix('')}-suspects/"
                f"suspect-chunk-{suspect['chunk']:04d}.wav; redo it with --redo-chunk "
                f"{suspect['chunk']}",
                file=sys.stderr,
            )
    if "library" in summary.files:
        print(f"shelved in {summary.files['library']}")
    minutes, seconds = divmod(summary.audio_seconds, 60)
    print(
        f"wrote {args.output}: {summary.chunks} chunks, {len(summary.chapters)} chapters, "
        f"{int(minutes)}:{seconds:04.1f} of audio in {summary.wall_seconds:.1f} s "
        f"(real-time factor {summary.real_time_factor:.2f}, engine {summary.engine})"
    )
