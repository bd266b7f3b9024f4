"""One chunk's audio made ready for joining: trimmed, faded, and measured."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.audio.loudness import step_energies, true_peak
from shared.infra.settings import AudioSettings

WINDOW_S = 0.01
_MARGIN_S = 0.02


# How a chunk row keeps its loudness steps (``chunk.loudness_steps``): little-endian float64s
STEPS_LAYOUT = "<f8"


@dataclass(frozen=True)
class ChunkStats:
    """What the stitch needs to know of a chunk without reading its audio."""

    samples: int
    steps: np.ndarray  # BS.1770 K-weighted mean square per 100 ms
    peak: float  # true peak, linear
    energy: float = 0.0  # sum of squared samples (a file's RMS)

    def stored_steps(self) -> bytes:
        """The steps as the chunk's row keeps them."""
        return self.steps.astype(STEPS_LAYOUT).tobytes()

    @classmethod
    def from_row(
        cls, samples: int | None, steps: bytes | None, peak: float | None, energy: float | None
    ) -> ChunkStats:
        """The stats a chunk's row keeps (its columns, None before the chunk is decoded)."""
        stored = np.frombuffer(steps or b"", STEPS_LAYOUT)
        return cls(samples or 0, stored, peak or 0.0, energy or 0.0)


def loud_windows(pcm: np.ndarray, threshold_dbfs: float) -> np.ndarray:
    """Whether each whole 10 ms window of ``pcm`` is louder (RMS) than the threshold."""
    window = round(WINDOW_S * SAMPLE_RATE)
    usable = len(pcm) // window * window
    rms = np.sqrt((pcm[:usable].reshape(-1, window).astype(np.float64) ** 2).mean(axis=1))
    return rms > 10 ** (threshold_dbfs / 20)


def trim_silence(pcm: np.ndarray, threshold_dbfs: float) -> np.ndarray:
    """Cut leading and trailing silence (10 ms windows below the threshold), keeping 20 ms."""
    window = round(WINDOW_S * SAMPLE_RATE)
    loud = np.flatnonzero(loud_windows(pcm, threshold_dbfs))
    if len(loud) == 0:
        return pcm[:0]
    margin = round(_MARGIN_S * SAMPLE_RATE)
    start = max(loud[0] * window - margin, 0)
    end = min((loud[-1] + 1) * window + margin, len(pcm))
    return pcm[start:end]


def apply_fades(pcm: np.ndarray, fade_ms: float) -> np.ndarray:
    """Raised-cosine fade in and out, so that joins start and end at zero without a click."""
    n = min(round(fade_ms / 1000 * SAMPLE_RATE), len(pcm) // 2)
    if n == 0:
        return pcm
    ramp = (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
    out = pcm.astype(np.float32, copy=True)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def finish_chunk(pcm: np.ndarray, settings: AudioSettings) -> tuple[np.ndarray, ChunkStats]:
    """Trim, fade and measure a decoded chunk."""
    pcm = apply_fades(trim_silence(pcm, settings.silence_threshold_dbfs), settings.fade_ms)
    energy = float(np.dot(pcm.astype(np.float64), pcm.astype(np.float64)))
    return pcm, ChunkStats(len(pcm), step_energies(pcm, SAMPLE_RATE), true_peak(pcm), energy)
