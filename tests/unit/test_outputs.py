"""The pieces of a job's files: presets, the peak limiter, caption timing and formats (read back
by webvtt-py and srt), the chapter layout, and ACX's figures measured on a written file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile
import srt
import webvtt

from shared.audio import SAMPLE_RATE, acx
from shared.audio.captions import Cue, chunk_cues
from shared.audio.captions import srt as to_srt
from shared.audio.captions import webvtt as to_webvtt
from shared.audio.encode import AudioWriter
from shared.audio.finish import finish_chunk
from shared.audio.limiter import limit_peaks
from shared.audio.loudness import true_peak
from shared.audio.presets import Mastering, mastering
from shared.audio.programme import Part, lay_out
from shared.infra.settings import AudioSettings
from shared.text.chunking import Boundary


def test_presets_are_defaults_a_request_overrides():
    audio = AudioSettings()
    assert mastering(None, audio, {}).format == "mp3"
    acx_preset = mastering("acx", audio, {})
    assert (acx_preset.chapter_rate, acx_preset.chapter_bitrate_kbps) == (44100, 192)
    assert acx_preset.loudness == "rms" and acx_preset.acx_report
    assert mastering("podcast", audio, {}).target == -16.0
    book = mastering("audiobook", audio, {})
    assert (book.format, book.chapter_format, book.target) == ("m4b", "mp3", -19.0)
    assert mastering("audiobook", audio, {"format": "flac"}).format == "flac"
    assert mastering(None, audio, {"format": "m4b"}).chapter_format == "mp3"
    assert mastering(None, audio, {"format": "opus"}).chapter_format == "opus"


def test_the_limiter_keeps_true_peaks_under_its_ceiling_and_leaves_quiet_audio_alone():
    rng = np.random.default_rng(3)
    loud = (rng.standard_normal(SAMPLE_RATE) * 0.2).astype(np.float32)  # peaks near 0 dBFS

    def rms(pcm):
        return 10 * math.log10(float(np.mean(pcm.astype(np.float64) ** 2)))

    limited = limit_peaks(loud, -4.5)
    assert 20 * math.log10(true_peak(loud)) > -2
    assert 20 * math.log10(true_peak(limited)) <= -4.5 + 0.05
    assert rms(limited) > rms(loud) - 1.0  # the peaks limited, the level kept
    quiet = loud * np.float32(0.1)
    assert limit_peaks(quiet, -4.5) is quiet


def test_sentence_cues_move_to_the_pause_before_each_sentence():
    """A chunk of two sentences: speech, 0.4 s of pause, speech. The second cue starts where
    the pause ends, not where the characters alone would put it."""
    steps = np.concatenate([np.ones(20), np.full(4, 1e-6), np.ones(10)])  # 100 ms steps
    cues = chunk_cues(["A long first sentence here.", "Short."], 10.0, 3.4, steps)
    assert cues[0].start == 10.0 and cues[1].start == pytest.approx(12.4)
    assert cues[0].end == cues[1].start and cues[1].end == pytest.approx(13.4)


def test_caption_files_parse_with_their_own_readers(tmp_path):
    cues = [Cue(0.0, 1.5, "One --> two & <three>"), Cue(3661.25, 3662.0, "Late.")]
    (tmp_path / "c.vtt").write_text(to_webvtt(cues))
    read = webvtt.read(str(tmp_path / "c.vtt"))
    assert [c.start for c in read] == ["00:00:00.000", "01:01:01.250"]
    assert "-->" not in read[0].text
    parsed = list(srt.parse(to_srt(cues)))
    assert [p.start.total_seconds() for p in parsed] == [0.0, 3661.25]
    assert parsed[1].content == "Late."


def test_chapters_are_marked_where_their_first_chunk_starts_and_gained_on_their_own():
    def part(index, chapter, boundary, level):
        _, stats = finish_chunk(
            (level * np.sin(np.arange(SAMPLE_RATE) * 0.1)).astype(np.float32), AudioSettings()
        )
        return Part(index, chapter, boundary, stats)

    parts = [
        part(0, 0, Boundary.START, 0.5),
        part(1, 0, Boundary.SENTENCE, 0.5),
        part(2, 1, Boundary.CHAPTER, 0.05),
    ]
    layout = lay_out(parts, ["One", "Two"], AudioSettings(), Mastering())
    second = layout.starts[2]
    assert [m.title for m in layout.marks] == ["One", "Two"]
    assert layout.marks[0].start == 0 and layout.marks[1].start == second
    assert layout.marks[0].end == second and layout.marks[1].end == layout.samples
    assert layout.gains[1] > 5 * layout.gains[0]  # the quiet chapter is brought up on its own


def test_acx_figures_are_measured_on_the_file_as_written(tmp_path):
    path = tmp_path / "c.mp3"
    tone = (0.1 * np.sin(2 * np.pi * 300 * np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE)).astype(
        np.float32
    )
    quiet = np.zeros(SAMPLE_RATE, np.float32)
    with AudioWriter(path, "mp3", 192, rate=44100) as writer:
        for block in (quiet[: SAMPLE_RATE * 3 // 4], tone, quiet, quiet):
            writer.write(block)
    figures = acx.measure(path)
    pcm, rate = soundfile.read(path)
    assert figures["sample_rate_hz"] == rate == 44100 and figures["bitrate_kbps"] == 192
    assert figures["rms_dbfs"] == pytest.approx(10 * math.log10((pcm**2).mean()), abs=0.05)
    assert figures["peak_dbfs"] == pytest.approx(20 * math.log10(np.abs(pcm).max()), abs=0.05)
    assert figures["head_room_tone_s"] == pytest.approx(0.75, abs=0.03)
    assert figures["tail_room_tone_s"] == pytest.approx(2.0, abs=0.06)
    report = acx.report(figures, constant_bitrate=True)
    assert not report["passed"]  # a tone at -23 dBFS RMS, with digital silence
    assert report["checks"]["peak_dbfs"]["passed"] and not report["checks"]["rms_dbfs"]["passed"]
