"""``lyre synth`` as a user runs it: a subprocess, real files, real engines."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from shared.text.chunking import chunk_text
from tests.e2e.conftest import programme_samples

pytestmark = pytest.mark.slow

FRAME = 2048  # one SNAC coarse frame
BOOK = """# The First Chapter

It began on a Tuesday. Nobody expected anything, and nothing was announced.

tara: Did you hear that? <gasp>
leo: I heard nothing at all.

# The Second Chapter

The second chapter is short, but it has two paragraphs.

This is the second one. <laugh> It ends here.

Chapter Three

A plain-text chapter line starts the last chapter.
"""


def synth(
    tmp_path: Path, env: dict[str, str], fmt: str, name: str = "book", *extra: str
) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    """Run ``lyre synth`` on BOOK (with ``extra`` arguments); the output, the work folder and
    the finished process."""
    source = tmp_path / "book.md"
    source.write_text(BOOK)
    work = tmp_path / f"work-{name}"
    output = tmp_path / f"{name}.{fmt}"
    command = ["synth", str(source), "-o", str(output), *extra]
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", *command],
        env={**os.environ, **env, "LYRE_WORK_DIR": str(work), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return output, work, proc


def samples_in(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def check_accounting(output: Path, work: Path, max_chars: int) -> None:
    chunks = chunk_text(BOOK, max_chars).spans
    stored = sorted(work.glob("jobs/*/chunks/*.f32"))
    assert [int(p.stem) for p in stored] == [c.index for c in chunks]  # every chunk, once
    lengths = [len(np.fromfile(p, dtype="<f4")) for p in stored]
    expected = programme_samples(
        [(c.chapter, c.boundary, n) for c, n in zip(chunks, lengths, strict=True)]
    )
    assert abs(samples_in(output) - expected) <= FRAME


def test_orpheus_transformers_multi_chapter(tmp_path, orpheus_env, monkeypatch):
    output, work, proc = synth(tmp_path, orpheus_env, "wav")
    assert "engine orpheus" in proc.stdout
    check_accounting(output, work, max_chars=80)
    with sqlite3.connect(work / "lyre.db") as db:  # the farm's schema, on SQLite
        ((status, done, total),) = db.execute("SELECT status, chunks_done, chunks_total FROM job")
        events = [kind for (kind,) in db.execute("SELECT kind FROM job_event ORDER BY id")]
    assert (status, done) == ("succeeded", total)
    # every transition has its event, written by the migration's triggers on SQLite too
    assert [e for e in events if e.startswith("job.")] == [
        "job.queued",
        "job.running",
        "job.succeeded",
    ]
    assert events.count("chunk.generated") == events.count("chunk.done") == total
    # seeded sampling and decode: the same bytes again, here in this process, whose torch
    # random state is not a fresh process's (test_espeak_with_a_seed… runs two processes)
    again = synth_here(tmp_path, orpheus_env, "wav", "again", monkeypatch)
    assert again.read_bytes() == output.read_bytes()


def synth_here(tmp_path: Path, env: dict[str, str], fmt: str, name: str, monkeypatch) -> Path:
    """``lyre synth`` on BOOK in this process (the module's ``synth`` runs a subprocess)."""
    from cli.main import main
    from shared.infra.settings import get_settings

    output = tmp_path / f"{name}.{fmt}"
    for variable, value in {**env, "LYRE_WORK_DIR": str(tmp_path / f"work-{name}")}.items():
        monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    try:
        assert main(["synth", str(tmp_path / "book.md"), "-o", str(output)]) == 0
    finally:
        get_settings.cache_clear()
    return output


@pytest.mark.parametrize("fmt", ["mp3", "wav"])
def test_espeak_multi_chapter(tmp_path, fmt):
    output, work, proc = synth(tmp_path, {"LYRE_ENGINE": "espeak"}, fmt)
    assert "engine espeak" in proc.stdout and "warning" not in proc.stderr
    check_accounting(output, work, max_chars=400)


def test_espeak_with_a_seed_writes_the_same_files_at_every_run(tmp_path):
    """Two runs, two processes, two work folders: the MP3, the chaptered M4B beside it and
    each chapter's file are the same bytes."""
    files = {}
    for name in ("a", "b"):
        env = {"LYRE_ENGINE": "espeak"}
        output, work, _ = synth(tmp_path, env, "mp3", name, "--seed", "5", "--chapters")
        made = [output, output.with_suffix(".m4b"), *sorted(tmp_path.glob(f"{name}-chapters/*"))]
        files[name] = [path.read_bytes() for path in made]
        with sqlite3.connect(work / "lyre.db") as db:
            assert db.execute("SELECT seed FROM job").fetchall() == [(5,)]
    assert len(files["a"]) == 2 + 3 + 1  # the book, its M4B, three chapters and their list
    assert files["a"] == files["b"]
