from __future__ import annotations

import json

import pytest

from cli.main import main
from tests.books import make_epub, three_chapter_book


@pytest.fixture()
def book(tmp_path):
    path = tmp_path / "book.md"
    path.write_text("# One\n\nHello there. This is a short book.\n\n# Two\n\nThe end.\n")
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse exits on its own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("make_input", "extra", "message"),
    [
        (lambda p: p / "missing.txt", [], "no such file"),
        (lambda p: p, [], "is a directory"),
        (lambda p: _write(p / "e.txt", b"  \n\t\n"), [], "the file is empty"),
        (lambda p: _write(p / "b.txt", b"\x7fELF\x02\x01\x00\x00binary"), [], "binary data"),
        (lambda p: _write(p / "l.txt", b"caf\xe9 latin-1"), [], "not UTF-8"),
        (lambda p: _write(p / "p.txt", b"... --- !!!"), [], "nothing to say"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--voice", "bob"], "invalid choice: 'bob'"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--engine", "polly"], "invalid choice"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--format", "aiff"], "invalid choice"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--max-chars", "5"], "at least 40"),
        (lambda p: _write(p / "book.epub", b"%PDF-1.7"), [], "not an EPUB: the file is not a zip"),
        (lambda p: make_epub(p / "d.epub", three_chapter_book(), drm=True), [], "(DRM)"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--preset", "loud"], "invalid choice"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--seed", "soon"], "not a whole number"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--seed", "-1"], "-1 is not between 0 and"),
        (lambda p: _write(p / "ok.txt", b"Hi."), ["--seed", str(2**63)], "and 922337203685477"),
        (
            lambda p: _write(p / "ok.txt", b"Hi."),
            ["--lexicon", "/nonexistent/words.json"],
            "lexicon",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make_input, extra, message):
    source = make_input(tmp_path)
    code, _out, err = run(capsys, "synth", str(source), "-o", str(tmp_path / "o.wav"), *extra)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o.wav").exists()


def test_the_farms_limits_hold_for_the_file_and_for_the_text_with_its_credits(
    tmp_path, capsys, book, monkeypatch
):
    """The same limits and messages as the API's (``shared.farm.intake``): the file's bytes,
    and the text once the credits are added to it."""
    from shared.infra.settings import get_settings

    monkeypatch.setenv("LYRE_FARM__MAX_UPLOAD_BYTES", "2000")
    monkeypatch.setenv("LYRE_FARM__MAX_INPUT_BYTES", "1000")
    get_settings.cache_clear()
    try:
        big = _write(tmp_path / "big.txt", b"Words. " * 300)
        code, _, err = run(capsys, "synth", str(big), "-o", str(tmp_path / "o.wav"))
        assert code == 2 and "the file is larger than this farm accepts (2 KB)" in err
        credits = ["--opening-credits", "Read by Lyre. " * 70]
        code, _, err = run(capsys, "synth", str(book), "-o", str(tmp_path / "o.wav"), *credits)
        assert code == 2 and "the text is larger than this farm accepts (1 KB)" in err
    finally:
        get_settings.cache_clear()
    assert not (tmp_path / "o.wav").exists()


def test_unknown_output_format_and_missing_directory(tmp_path, capsys, book):
    code, _, err = run(capsys, "synth", str(book), "-o", str(tmp_path / "o.xyz"))
    assert code == 2 and "--format" in err
    code, _, err = run(capsys, "synth", str(book), "-o", str(tmp_path / "no" / "o.wav"))
    assert code == 2 and "no such directory" in err


def test_espeak_synth_prints_a_summary(tmp_path, capsys, book, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    code, out, err = run(capsys, "synth", str(book), "-o", str(tmp_path / "o.flac"))
    assert code == 0, err
    assert "using the espeak-ng engine" in err
    assert "4 chunks" in out and "real-time factor" in out and "engine espeak" in out
    assert (tmp_path / "o.flac").stat().st_size > 1000


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_models_pull_without_a_hub_is_one_line_and_exit_1(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    code, _, err = run(capsys, "models", "pull")
    assert code == 1
    assert "cannot download model 'canopylabs/orpheus-3b-0.1-ft'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LYRE_ORPHEUS__SNAC_PRODUCTS", "int8", "LYRE_ORPHEUS__SNAC_PRODUCTS: Input should be"),
        ("LYRE_CHUNKING__MAX_CHARS", "many", "LYRE_CHUNKING__MAX_CHARS: Input should be"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable_and_exit_2(
    tmp_path, capsys, book, monkeypatch, variable, value, message
):
    from shared.infra.settings import get_settings

    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        code, _, err = run(capsys, "synth", str(book), "-o", str(tmp_path / "o.wav"))
    finally:
        get_settings.cache_clear()
    assert code == 2 and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


DRY_BOOK = (
    "# One\n\nDr. Watson met Siobhan.\n\nleo: Hello there. <laugh> <shout>\n\n# Two\n\nThe end."
)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("book.md", DRY_BOOK.encode()),
        ("book.txt", b"Dr. Watson met Siobhan.\n\nThe end."),
        ("book.html", b"<html><body><h1>One</h1><p>Dr. Watson met Siobhan.</p></body></html>"),
        ("book.epub", None),
    ],
)
def test_a_dry_run_prints_what_each_chunk_will_say_and_makes_nothing(
    tmp_path, capsys, monkeypatch, name, data
):
    source = tmp_path / name
    if data is None:
        make_epub(source, three_chapter_book())
    else:
        source.write_bytes(data)
    lexicon = _write(tmp_path / "words.json", b'{"siobhan": "shiv-awn"}')
    monkeypatch.setenv("LYRE_WORK_DIR", str(tmp_path / "work"))
    code, out, err = run(capsys, "synth", str(source), "--dry-run", "--lexicon", str(lexicon))
    assert code == 0, err
    code, listed, _ = run(capsys, "synth", str(source), "--dry-run", "--json")
    lines = [json.loads(line) for line in listed.splitlines()]
    assert [line["chunk"] for line in lines] == list(range(len(lines))) and lines
    # each line is the engine's text; the lexicon changes what is said, not what is written
    assert out.splitlines() == [line["said"].replace("Siobhan", "Shiv-awn") for line in lines]
    # ... and says the author's "Dr." before a name as a reader does
    assert all(line["written"].replace("Dr.", "Doctor") == line["said"] for line in lines)
    assert {"chapter", "chapter_title", "voice"} <= set(lines[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, lexicon.name])


def test_a_dry_runs_voices_chapters_and_warnings(tmp_path, capsys):
    source = _write(tmp_path / "b.md", DRY_BOOK.encode())
    code, out, err = run(capsys, "synth", str(source), "--dry-run", "--json", "--voice", "zoe")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["chapter"], x["chapter_title"], x["voice"]) for x in lines] == [
        (1, "One", "zoe"),
        (1, "One", "zoe"),
        (1, "One", "leo"),
        (2, "Two", "zoe"),
        (2, "Two", "zoe"),
    ]
    assert lines[2]["said"] == "Hello there. <laugh>"
    assert "warning: removed 1 unsupported tag(s) <shout>" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--json"], "--json goes with --dry-run"), ([], "the output is missing: -o FILE")],
)
def test_a_dry_runs_arguments(tmp_path, capsys, extra, message):
    source = _write(tmp_path / "b.md", DRY_BOOK.encode())
    code, _, err = run(capsys, "synth", str(source), *extra)
    assert code == 2 and message in err
