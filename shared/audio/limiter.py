"""A look-ahead peak limiter for one chunk at a time (ACX's peak limit at its RMS target).

Speech brought to ACX's -20 dBFS RMS has peaks near 0 dBFS, so a plain gain cannot meet both
limits. The gain each sample needs (``ceiling / |x|``, at most 1) is spread by a running
minimum over twice the smoothing window and then averaged over the window: every sample's
smoothed gain is at most the one it needs, so no sample passes the ceiling, and the gain moves
over milliseconds, not from one sample to the next. Chunks are faded to silence at their edges,
so each is limited on its own and a retried chunk is limited the same way.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

from shared.audio import SAMPLE_RATE

WINDOW_S = 0.005


def limit_peaks(pcm: np.ndarray, ceiling_dbfs: float) -> np.ndarray:
    """``pcm`` with every sample, and the peaks between samples (4x oversampled, as BS.1770's
    true peak), within ``ceiling_dbfs``: a file resampled to 44.1 kHz and encoded as MP3 then
    stays under the ceiling plus the encoder's own overshoot."""
    ceiling = 10 ** (ceiling_dbfs / 20)
    if len(pcm) == 0:
        return pcm
    between = np.abs(resample_poly(pcm.astype(np.float64), 4, 1))[: 4 * len(pcm)]
    magnitude = np.maximum(np.abs(pcm), between.reshape(len(pcm), 4).max(axis=1))
    if magnitude.max() <= ceiling:
        return pcm
    window = max(round(WINDOW_S * SAMPLE_RATE), 1)
    needed = np.minimum(1.0, ceiling / np.maximum(magnitude, 1e-12))
    spread = minimum_filter1d(needed, size=2 * window + 1, mode="nearest")
    gain = uniform_filter1d(spread, size=window, mode="nearest")
    out = pcm * np.minimum(gain, needed)  # the average's rounding may not pass it either
    return out.astype(np.float32)
