"""``lyre synth`` with the checks: faulty takes made again with the same bytes at every run,
chunks that fail every take named with their audio, and one redone in the work folder."""

from __future__ import annotations

import hashlib

import pytest

from shared.infra.settings import get_settings
from tests.unit.test_cli import run

BOOK = (
    "# One\n\nThe boats came in at dusk, one by one, their lamps low over the water.\n\n"
    "# Two\n\nBy midnight the wind had turned, and nobody in the village slept.\n"
)


@pytest.fixture()
def faulty(monkeypatch, tmp_path):
    """Every first take spoiled; ``takes`` chooses whether a second may follow."""

    def settings(
        takes: int, kinds: str = '["early","loop","babble","silence","skip"]', work: str = "work"
    ) -> None:
        monkeypatch.setenv("LYRE_FAULTS__RATE", "1.0")
        monkeypatch.setenv("LYRE_FAULTS__KINDS", kinds)
        monkeypatch.setenv("LYRE_CHECKS__TAKES", str(takes))
        monkeypatch.setenv("LYRE_WORK_DIR", str(tmp_path / work))
        get_settings.cache_clear()

    yield settings
    get_settings.cache_clear()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_faulty_takes_are_made_again_alike_at_every_run(tmp_path, capsys, faulty):
    book = tmp_path / "book.md"
    book.write_text(BOOK)
    outputs = []
    for n in (1, 2):  # each in a work folder of its own: nothing resumed
        faulty(takes=3, work=f"work{n}")
        out = tmp_path / f"run{n}.wav"
        code, _, err = run(capsys, "synth", str(book), "-o", str(out), "--seed", "5")
        assert code == 0, err
        assert "needs a listen" not in err
        outputs.append(digest(out))
    assert outputs[0] == outputs[1]


def test_a_suspect_chunk_is_named_heard_and_redone_in_the_work_folder(tmp_path, capsys, faulty):
    book, out = tmp_path / "book.md", tmp_path / "book.wav"
    book.write_text(BOOK)
    faulty(takes=1, kinds='["early"]')
    args = ["synth", str(book), "-o", str(out), "--seed", "5"]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert "needs a listen: chunk 1 of chapter 1 (too short: " in err
    heard = tmp_path / "book-suspects" / "suspect-chunk-0001.wav"
    assert heard.stat().st_size > 1000
    chunks = sorted((tmp_path / "work").rglob("*.f32"))
    before = {path.name: digest(path) for path in chunks}
    assert len(before) == 4  # two headings, two paragraphs
    code, _, err = run(capsys, *args, "--redo-chunk", "1", "--redo-voice", "leo")
    assert code == 0, err
    assert "needs a listen: chunk 1 " not in err and "needs a listen: chunk 3 " in err
    after = {path.name: digest(path) for path in chunks}
    assert [name for name in before if before[name] != after[name]] == ["000001.f32"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--redo-chunk", "9"], "--redo-chunk 9: the run has no chunk 9"),
        (["--redo-chunk", "1", "--redo-text", "A. B. " * 100], "redo its chapter"),
        (["--redo-text", "Hello."], "--redo-text and --redo-voice go with --redo-chunk"),
    ],
)
def test_redo_mistakes_are_one_line_and_exit_2(tmp_path, capsys, faulty, extra, message):
    book, out = tmp_path / "book.md", tmp_path / "book.wav"
    book.write_text(BOOK)
    faulty(takes=1, kinds='["early"]')
    assert run(capsys, "synth", str(book), "-o", str(out))[0] == 0
    code, _, err = run(capsys, "synth", str(book), "-o", str(out), *extra)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_redo_needs_a_finished_run_and_its_work_folder(tmp_path, capsys, monkeypatch, faulty):
    book, out = tmp_path / "book.md", tmp_path / "book.wav"
    book.write_text(BOOK)
    faulty(takes=1)
    code, _, err = run(capsys, "synth", str(book), "-o", str(out), "--redo-chunk", "1")
    assert code == 2 and "no finished run of this input" in err
    monkeypatch.delenv("LYRE_WORK_DIR")
    get_settings.cache_clear()
    code, _, err = run(capsys, "synth", str(book), "-o", str(out), "--redo-chunk", "1")
    assert code == 2 and "--redo-chunk needs LYRE_WORK_DIR" in err
