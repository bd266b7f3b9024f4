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
import scipy  # its submodules load on first use (scipy.signal takes 0.7 s to import)

from shared.audio import SAMPLE_RATE

WINDOW_S = 0.005


def limit_peaks(pcm: np.ndarray, ceiling_dbfs: float) -> np.ndarray:
    """``pcm`` with every sample, and the peaks between samples (4x oversampled, as BS.1770's
    true peak), within ``ceiling_dbfs``: a file resampled to 44.1 kHz and encoded as MP3 then
    stays under the ceiling plus the encoder's own overshoot."""
    ceiling = np.float32(10 ** (ceiling_dbfs / 20))
    if len(pcm) == 0:
        return pcm
    pcm = pcm.astype(np.float32, copy=False)
    magnitude = _true_magnitude(pcm, float(ceiling) / 2)
    if magnitude.max() <= ceiling:
        return pcm
    window = max(round(WINDOW_S * SAMPLE_RATE), 1)
    needed = np.minimum(np.float32(1), ceiling / np.maximum(magnitude, np.float32(1e-12)))
    spread = scipy.ndimage.minimum_filter1d(needed, size=2 * window + 1, mode="nearest")
    gain = scipy.ndimage.uniform_filter1d(spread, size=window, mode="nearest")
    return pcm * np.minimum(gain, needed)  # the average's rounding may not pass it either


def _true_magnitude(pcm: np.ndarray, floor: float) -> np.ndarray:
    """Each sample's magnitude or the largest between it and the next, 4x oversampled as
    BS.1770's true peak is (``shared.audio.loudness.true_peak``), in float32 (a 30-second
    chunk: 12 MB). A chunk whose samples all stay under ``floor`` (6 dB under the ceiling: no
    band-limited signal peaks that far between its samples) is not oversampled."""
    out = np.abs(pcm)
    if out.max() < floor:
        return out
    up = scipy.signal.resample_poly(pcm, 4, 1)
    np.abs(up, out=up)
    return np.maximum(out, up[: 4 * len(pcm)].reshape(len(pcm), 4).max(axis=1))
