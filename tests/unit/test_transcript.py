"""The transcription check (shared/checks/transcript.py): Whisper loaded and run through
faster-whisper as a worker would, on a tiny random Whisper in the real layout (built by
bench/transcribe.py's builder: transformers' files, converted by CTranslate2's own converter),
and the word error rate on real normaliser cases."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from shared.audio import SAMPLE_RATE
from shared.checks.transcript import (
    Transcriber,
    pull_transcriber,
    to_whisper_rate,
    word_errors,
)
from shared.speech.weights import ModelNotFound

BENCH = Path(__file__).resolve().parents[2] / "bench" / "transcribe.py"


@pytest.fixture(scope="module")
def bench():
    """bench/transcribe.py as a module: its builder makes the test's Whisper."""
    spec = importlib.util.spec_from_file_location("bench_transcribe", BENCH)
    module = sys.modules["bench_transcribe"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def whisper_dir(bench, tmp_path_factory) -> str:
    """A converted Whisper of tiny dimensions with the English-only vocabulary (51864)."""
    return bench.build_whisper(tmp_path_factory.mktemp("whisper"), bench.TINY)


def tone(seconds: float = 1.0, hz: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def test_the_converted_model_has_faster_whispers_files(whisper_dir):
    names = {p.name for p in Path(whisper_dir).iterdir()}
    assert {"model.bin", "config.json", "tokenizer.json", "preprocessor_config.json"} <= names


def test_transcribes_a_tone_and_silence_the_same_each_time(whisper_dir):
    transcriber = Transcriber.load(whisper_dir)
    assert not transcriber.model.model.is_multilingual  # read as an English-only model
    for pcm in (tone(), np.zeros(SAMPLE_RATE, np.float32)):
        text = transcriber.transcribe(pcm)
        assert isinstance(text, str)  # random weights: garbage, but always the same garbage
        assert transcriber.transcribe(pcm) == text


def test_load_refuses_a_model_that_is_not_converted(whisper_dir):
    transformers_dir = Path(whisper_dir).parent / "transformers"  # the builder's source
    with pytest.raises(ModelNotFound, match="not a CTranslate2 Whisper"):
        Transcriber.load(str(transformers_dir))


def test_load_never_downloads():
    with pytest.raises(ModelNotFound, match="lyre models pull"):
        Transcriber.load("lyre-tests/no-such-whisper")


def test_pull_keeps_a_local_directory(whisper_dir):
    assert pull_transcriber(whisper_dir) == whisper_dir


def test_audio_is_resampled_to_16_khz_keeping_its_pitch():
    heard = to_whisper_rate(tone(hz=1000.0), SAMPLE_RATE)
    assert heard.dtype == np.float32 and len(heard) == 16_000
    assert np.argmax(np.abs(np.fft.rfft(heard))) == 1000  # 1 Hz bins over one second


@pytest.mark.parametrize(
    ("reference", "hypothesis", "wer"),
    [
        ("The keeper lit the lamp", "The keeper lit the lamp", 0.0),
        # case and punctuation go; "three dollars" and "$3" are one token either way
        ("Doctor Watson paid three dollars", "doctor watson paid three dollars.", 0.0),
        ("Dr. Watson paid $3.", "doctor watson paid three dollars", 0.0),
        ("the keeper lit lamps", "the keeper lamps", 0.25),  # a word skipped
        ("the keeper lit the lamp", "the keeper lit lit the lamp", 0.2),  # a word repeated
        ("the keeper lit the lamp", "the keeper lit the lump", 0.2),  # a word said wrong
        ("She turned twenty five", "she turned 25", 0.0),  # numbers in words are digits
        ("It's nineteen eighty-four", "it is 1984", 0.0),
        ("the colour of the sea", "the color of the sea", 0.0),  # British and American
        ("the grey harbour", "the gray harbor", 0.0),
        ("um, the lamp", "the lamp", 0.0),  # hesitations are not words
        ("", "", 0.0),
        ("", "hello", 1.0),
        ("hello", "", 1.0),
    ],
)
def test_word_errors(reference, hypothesis, wer):
    assert word_errors(reference, hypothesis) == pytest.approx(wer)


def test_the_bench_prints_a_cost_per_chunk_length(bench, capsys):
    bench.main(["--chunks", "4,9", "--audio-s", "9"], dims=bench.TINY)
    out = capsys.readouterr().out
    assert re.search(r"^model load: [\d.]+ s; 1 CTranslate2 thread", out, re.M), out
    for seconds, tokens in ((4, 14), (9, 30)):  # a real transcript's length: 3.3 tokens/s
        assert re.search(rf"^\s+{seconds}\s+\d+\s+{tokens}\s+\d+\s+[\d.]+$", out, re.M), out


def test_a_take_whisper_does_not_hear_is_made_again_then_suspect(
    whisper_dir, tmp_path, capsys, monkeypatch
):
    """The check as the cpu stage runs it (here in ``lyre synth``): random weights hear no
    words of the text, so each take fails, is made again, and the last is kept as suspect."""
    from shared.infra.settings import get_settings
    from tests.unit.test_cli import run

    book = tmp_path / "book.md"
    book.write_text("# One\n\nThe boats came in at dusk, one by one.\n")
    monkeypatch.setenv("LYRE_CHECKS__TRANSCRIBE", "true")
    monkeypatch.setenv("LYRE_CHECKS__WHISPER_MODEL", whisper_dir)
    monkeypatch.setenv("LYRE_CHECKS__TAKES", "2")
    get_settings.cache_clear()
    try:
        code, _, err = run(capsys, "synth", str(book), "-o", str(tmp_path / "o.wav"))
    finally:
        get_settings.cache_clear()
    assert code == 0, err
    heard = re.findall(r"needs a listen: chunk (\d) of chapter 1 \(words: (\d+)% of the words", err)
    assert [chunk for chunk, _ in heard] == ["0", "1"] and all(int(w) > 35 for _, w in heard)
