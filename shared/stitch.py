"""Join chunks into one programme: pauses by boundary kind, one gain for the whole."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from shared.audio import ChunkStats
from shared.chunking import Boundary
from shared.codec import SAMPLE_RATE
from shared.encode import AudioWriter
from shared.loudness import STEP_S, integrated_loudness
from shared.settings import AudioSettings


def pause_seconds(boundary: Boundary, settings: AudioSettings) -> float:
    """Silence inserted before a chunk that follows a boundary of this kind."""
    if boundary is Boundary.START:
        return 0.0
    return float(getattr(settings, f"pause_{boundary.value}_s"))


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
