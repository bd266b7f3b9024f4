from __future__ import annotations

import av
import numpy as np
import pyloudnorm
import pytest

from shared.audio.encode import FORMATS, AudioWriter
from shared.audio.finish import apply_fades, finish_chunk, trim_silence
from shared.audio.loudness import integrated_loudness, step_energies, true_peak
from shared.audio.presets import Mastering
from shared.audio.programme import Part, join_chunks, lay_out, loudness_gain, pause_samples, shape
from shared.infra.settings import AudioSettings
from shared.speech.engine import SpeechRequest
from shared.speech.espeak import EspeakEngine
from shared.text.chunking import Boundary

RATE = 24000
SENTENCES = [
    "The first sentence starts the programme.",
    "A second one, with a comma, follows it.",
    "Then a question comes along?",
    "And the last one ends it all.",
]


def speak(text: str, voice: str = "tara") -> np.ndarray:
    pcm = EspeakEngine().synthesize(SpeechRequest("t", text, voice, 0)).pcm
    assert pcm is not None
    return pcm


def read_audio(path) -> np.ndarray:
    with av.open(str(path)) as container:
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(audio=0)]
    data = np.concatenate(frames)
    return data.astype(np.float64) / (32768 if data.dtype == np.int16 else 1)


@pytest.mark.parametrize("seconds", [1.0, 7.3])
def test_loudness_matches_pyloudnorm(seconds):
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(int(seconds * RATE)) * 0.1
    for signal in (noise, speak(" ".join(SENTENCES))):
        ours = integrated_loudness(step_energies(signal, RATE))
        assert ours == pytest.approx(pyloudnorm.Meter(RATE).integrated_loudness(signal), abs=0.3)


def test_true_peak_sees_inter_sample_peaks():
    n = np.arange(4800)
    tone = np.sin(2 * np.pi * 6000 * n / RATE + np.pi / 4)  # samples never hit the crest
    assert np.abs(tone).max() < 0.75
    assert true_peak(tone) == pytest.approx(1.0, abs=0.02)


def test_trim_and_fade():
    pcm = np.concatenate([np.zeros(RATE), speak("Hello."), np.zeros(RATE)]).astype(np.float32)
    trimmed = trim_silence(pcm, -50)
    assert len(trimmed) < len(pcm) - RATE
    faded = apply_fades(trimmed, 10)
    assert faded[0] == pytest.approx(0, abs=1e-3) and faded[-1] == pytest.approx(0, abs=1e-3)
    assert trim_silence(np.zeros(RATE, np.float32), -50).shape == (0,)


def join_to_wav(tmp_path, chunks, boundaries, settings: AudioSettings | None = None):
    """The chunks joined as the stitch joins a chapter: its gain, its limiter, its pauses."""
    settings = settings or AudioSettings()
    finished = [finish_chunk(pcm, settings) for pcm in chunks]
    parts = [
        Part(i, 0, b, s) for i, (b, (_, s)) in enumerate(zip(boundaries, finished, strict=True))
    ]
    making = Mastering(target=settings.target_lufs, ceiling_db=settings.true_peak_dbtp)
    layout = lay_out(parts, [], settings, making)
    gain, pauses = layout.gains[0], layout.pauses
    shaped = [shape(p, s, gain, layout.ceiling_dbtp) for p, s in finished]
    out = tmp_path / "joined.wav"
    with AudioWriter(out, "wav") as writer:
        written = join_chunks(zip(pauses, shaped, strict=True), 1.0, writer)
    return finished, pauses, gain, written, read_audio(out), shaped


def test_joins_do_not_click(tmp_path):
    chunks = [speak(s, v) for s, v in zip(SENTENCES, ["tara", "leo", "tara", "zoe"], strict=True)]
    kinds = [Boundary.START, Boundary.SENTENCE, Boundary.SPEAKER, Boundary.PARAGRAPH]
    finished, pauses, _, written, audio, shaped = join_to_wav(tmp_path, chunks, kinds)
    assert len(audio) == written == sum(pauses) + sum(len(p) for p, _ in finished)
    position = 0
    for i, ((pcm, _), pause) in enumerate(zip(finished, pauses, strict=True)):
        position += pause
        around = [shaped[j] for j in (i - 1, i) if j >= 0]
        inner = max(np.abs(np.diff(p)).max() for p in around)
        join = audio[max(position - 200, 0) : position + 200]
        assert np.abs(np.diff(join)).max() <= inner + 2 / 32768
        position += len(pcm)


def test_programme_reaches_the_target_or_the_peak_ceiling(tmp_path):
    quiet = [speak(s) * 0.05 for s in SENTENCES]
    kinds = [Boundary.START] + [Boundary.SENTENCE] * 3
    settings = AudioSettings(target_lufs=-23.0)
    _, _, gain, _, audio, _ = join_to_wav(tmp_path, quiet, kinds, settings)
    measured = pyloudnorm.Meter(RATE).integrated_loudness(audio)
    peak_db = 20 * np.log10(true_peak(audio))
    assert gain > 1
    assert measured == pytest.approx(-23.0, abs=0.5) or peak_db == pytest.approx(-1.0, abs=0.2)
    assert peak_db <= -1.0 + 0.1


def test_pauses_follow_boundary_kinds():
    s = AudioSettings()
    assert pause_samples(Boundary.START, s) == 0
    ordered = [
        Boundary.WORD,
        Boundary.CLAUSE,
        Boundary.SENTENCE,
        Boundary.SPEAKER,
        Boundary.PARAGRAPH,
        Boundary.CHAPTER,
    ]
    lengths = [pause_samples(k, s) for k in ordered]
    assert lengths == sorted(lengths) and lengths[-1] == 2 * RATE
    assert pause_samples(Boundary.PARAGRAPH, AudioSettings(pauses_s={"paragraph": 1.5})) == 36000


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_streams_to_a_playable_file(tmp_path, fmt):
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE * 2) / RATE)).astype(np.float32)
    path = tmp_path / f"out.{fmt}"
    with AudioWriter(path, fmt, tags={"title": "Lyre test"}) as writer:
        for block in np.array_split(tone, 7):
            writer.write(block)
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        seconds = sum(f.samples for f in container.decode(stream)) / stream.rate
        tags = {k.lower(): v for k, v in {**container.metadata, **stream.metadata}.items()}
        assert tags["title"] == "Lyre test"
    assert seconds == pytest.approx(2.0, abs=0.03)


def test_a_chunk_of_pure_silence_is_measured_as_empty():
    pcm, stats = finish_chunk(np.zeros(RATE, np.float32), AudioSettings())
    assert pcm.shape == (0,) and stats.samples == 0 and stats.steps.shape == (0,)
    assert stats.peak == 0.0
    assert loudness_gain([stats], [0], AudioSettings().target_lufs) == 1.0
