"""Join chunks into one programme: pauses by boundary kind, one gain for the whole."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.audio.encode import AudioWriter
from shared.audio.finish import ChunkStats
from shared.audio.loudness import STEP_S, integrated_loudness
from shared.infra.settings import AudioSettings
from shared.text.chunking import Boundary


def pause_seconds(boundary: Boundary, settings: AudioSettings) -> float:
    """Silence inserted before a chunk that follows a boundary of this kind."""
    return settings.pauses_s[boundary]


def pause_samples(boundary: Boundary, settings: AudioSettings) -> int:
    return round(pause_seconds(boundary, settings) * SAMPLE_RATE)


def programme_gain(
    stats: Sequence[ChunkStats], pauses: Sequence[int], settings: AudioSettings
) -> float:
    """Linear gain that brings the programme to the loudness target without passing the
    true-peak ceiling, computed from the stored step energies alone."""
    parts = []
    for chunk, pause in zip(stats, pauses, strict=True):
        parts += [np.zeros(round(pause / SAMPLE_RATE / STEP_S)), chunk.steps]
    loudness = integrated_loudness(np.concatenate(parts)) if parts else -math.inf
    peak = max((chunk.peak for chunk in stats), default=0.0)
    if not math.isfinite(loudness) or peak <= 0:
        return 1.0
    gain_db = min(settings.target_lufs - loudness, settings.true_peak_dbtp - 20 * math.log10(peak))
    return 10 ** (gain_db / 20)


def join_chunks(pieces: Iterable[tuple[int, np.ndarray]], gain: float, writer: AudioWriter) -> int:
    """Write (pause samples, chunk PCM) pairs in order; return the samples written."""
    written = 0
    for pause, pcm in pieces:
        writer.write(np.zeros(pause, np.float32))
        writer.write(pcm * np.float32(gain))
        written += pause + len(pcm)
    return written


# LAME puts 1105 samples (its encoder delay plus the decoder's) ahead of a stream's first input
# sample; a stream whose frames follow another's in one file also starts one granule (576) late.
# Measured with FFmpeg's decoder; tests/integration/test_stages.py checks that joined halves
# decode to the programme's exact length, aligned with a single encode.
MP3_FRAME = 1152
LAME_DELAY = 1105
MP3_SEAM = LAME_DELAY + 576
PARALLEL_MIN_SAMPLES = 10 * 60 * SAMPLE_RATE  # shorter programmes encode in one pass


@dataclass(frozen=True)
class Seam:
    """Where a programme is cut into two MP3 halves that are encoded at the same time.

    The cut falls inside the pause before chunk ``index``: the first half ends with ``head``
    samples of that pause, so that its frames end exactly there, and the second half starts
    with ``tail`` samples of it, the rest less what the second encoder puts ahead.
    """

    index: int
    head: int
    tail: int


def mp3_seam(pauses: Sequence[int], samples: Sequence[int]) -> Seam | None:
    """The seam nearest the middle of a long programme, in a pause long enough to hold it."""
    starts = np.cumsum([0, *(p + s for p, s in zip(pauses, samples, strict=True))])
    if starts[-1] < PARALLEL_MIN_SAMPLES:
        return None
    fits = [k for k in range(1, len(pauses)) if pauses[k] >= MP3_FRAME + MP3_SEAM]
    if not fits:
        return None
    index = min(fits, key=lambda k: abs(int(starts[k]) - starts[-1] / 2))
    head = -(int(starts[index]) + LAME_DELAY) % MP3_FRAME
    return Seam(index, head, pauses[index] - head - MP3_SEAM)
