"""The checks on a take's decoded audio: no long silence inside it (a model that fell silent
mid-chunk), and sound that is speech, not noise (babble decoded from codes that are not speech
sounds as static). At the edges, silence is the chunk's breath, and the stitch trims it."""

from __future__ import annotations

import numpy as np

from shared.audio.finish import WINDOW_S, loud_windows
from shared.checks.speech import Verdict
from shared.infra.checks_settings import ChecksSettings

FLATNESS_FRAME = 512  # samples: 21 ms, a few pitch periods


def longest_inner_silence(pcm: np.ndarray, threshold_dbfs: float) -> float:
    """Seconds of the longest quiet stretch between the first and the last loud 10 ms."""
    loud = np.flatnonzero(loud_windows(pcm, threshold_dbfs))
    if len(loud) < 2:
        return 0.0
    return float((np.diff(loud) - 1).max() * WINDOW_S)


def spectral_flatness(pcm: np.ndarray, threshold_dbfs: float) -> float:
    """The median, over the loud 21 ms frames, of the power spectrum's geometric mean over its
    arithmetic mean: near 0 for voiced speech (its energy in harmonics and formants), near 0.56
    for white noise."""
    frames = len(pcm) // FLATNESS_FRAME
    x = pcm[: frames * FLATNESS_FRAME].reshape(frames, FLATNESS_FRAME).astype(np.float64)
    x = x[np.sqrt((x**2).mean(axis=1)) > 10 ** (threshold_dbfs / 20)]
    if not len(x):
        return 0.0
    power = np.abs(np.fft.rfft(x * np.hanning(FLATNESS_FRAME), axis=1))[:, 1:] ** 2 + 1e-20
    flatness = np.exp(np.log(power).mean(axis=1)) / power.mean(axis=1)
    return float(np.median(flatness))


def check_audio(pcm: np.ndarray, threshold_dbfs: float, checks: ChecksSettings) -> Verdict:
    """A take fails whose audio goes quiet for longer than ``checks.max_silence_s`` inside, or
    whose sound is flatter than ``checks.max_flatness`` (noise); silence all through fails too."""
    loud = loud_windows(pcm, threshold_dbfs)
    if len(pcm) and not loud.any():
        return Verdict(("silent: not one window above the silence threshold",), 2)
    verdict = Verdict()
    silence = longest_inner_silence(pcm, threshold_dbfs)
    if silence > checks.max_silence_s:
        why = f"{silence:.1f} s of silence inside, over {checks.max_silence_s:.1f} s"
        verdict += Verdict((f"falls silent: {why}",), 1 + silence / checks.max_silence_s / 10)
    flatness = spectral_flatness(pcm, threshold_dbfs)
    if flatness > checks.max_flatness:
        why = f"spectral flatness {flatness:.2f}, over {checks.max_flatness:.2f}"
        verdict += Verdict((f"noise, not speech: {why}",), 1 + flatness)
    return verdict
