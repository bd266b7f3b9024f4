"""ITU-R BS.1770 loudness from energies stored per chunk.

Each chunk keeps the mean square of its K-weighted signal per 100 ms step. The gating blocks
(400 ms, 75 % overlap) of a whole programme are sums of four consecutive steps, so its
integrated loudness follows from the chunks' steps and the pauses between them, before any
audio is re-read.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy  # its submodules load on first use: scipy.signal alone takes 0.7 s to import

STEP_S = 0.1
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0


@lru_cache
def k_weighting(sample_rate: int) -> np.ndarray:
    """Second-order sections of BS.1770's K-weighting at ``sample_rate`` (from the analogue
    prototypes, so that any rate works, not only 48 kHz)."""
    # Stage 1: high shelf, +4 dB above ~1.5 kHz. Stage 2: RLB high-pass at ~38 Hz.
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10 ** (gain_db / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf_b = [
        (vh + vb * k / q + k * k) / a0,
        2 * (k * k - vh) / a0,
        (vh - vb * k / q + k * k) / a0,
    ]
    shelf_a = [1, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1 + k / q + k * k
    hp_b = [1, -2, 1]
    hp_a = [1, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]
    return np.vstack([scipy.signal.tf2sos(shelf_b, shelf_a), scipy.signal.tf2sos(hp_b, hp_a)])


def step_energies(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mean square of the K-weighted signal per 100 ms step (the last step zero-padded)."""
    step = round(STEP_S * sample_rate)
    if len(pcm) == 0:  # a chunk that was all silence
        return np.zeros(0)
    weighted = scipy.signal.sosfilt(k_weighting(sample_rate), pcm.astype(np.float64))
    padded = np.zeros(math.ceil(len(weighted) / step) * step)
    padded[: len(weighted)] = weighted
    return (padded.reshape(-1, step) ** 2).mean(axis=1)


def integrated_loudness(steps: np.ndarray) -> float:
    """Gated integrated loudness in LUFS of a programme given its 100 ms step energies."""
    if len(steps) < 4:
        steps = np.concatenate([steps, np.zeros(4 - len(steps))])
    blocks = np.convolve(steps, np.ones(4) / 4, mode="valid")
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10 * np.log10(blocks)
    gated = blocks[block_lufs > ABSOLUTE_GATE_LUFS]
    if len(gated) == 0:
        return -math.inf
    relative = -0.691 + 10 * np.log10(gated.mean()) + RELATIVE_GATE_LU
    gated = gated[-0.691 + 10 * np.log10(gated) > relative]
    return float(-0.691 + 10 * np.log10(gated.mean()))


def true_peak(pcm: np.ndarray) -> float:
    """Peak magnitude after 4x oversampling (BS.1770 annex 2), linear."""
    if len(pcm) == 0:
        return 0.0
    return float(np.abs(scipy.signal.resample_poly(pcm.astype(np.float64), 4, 1)).max())
