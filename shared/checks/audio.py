"""The check on a take's decoded audio: no long silence inside it (a model that fell silent
mid-chunk). At the edges, silence is the chunk's breath, and the stitch trims it."""

from __future__ import annotations

import numpy as np

from shared.audio.finish import WINDOW_S, loud_windows
from shared.checks.speech import Verdict


def longest_inner_silence(pcm: np.ndarray, threshold_dbfs: float) -> float:
    """Seconds of the longest quiet stretch between the first and the last loud 10 ms."""
    loud = np.flatnonzero(loud_windows(pcm, threshold_dbfs))
    if len(loud) < 2:
        return 0.0
    return float((np.diff(loud) - 1).max() * WINDOW_S)


def check_audio(pcm: np.ndarray, threshold_dbfs: float, max_silence_s: float) -> Verdict:
    """A take whose audio goes quiet for longer than ``max_silence_s`` inside fails; silence
    all through is found at generation (its codes' pace) or here, as no loud window at all."""
    loud = loud_windows(pcm, threshold_dbfs)
    if len(pcm) and not loud.any():
        return Verdict(("silent: not one window above the silence threshold",), 2)
    silence = longest_inner_silence(pcm, threshold_dbfs)
    if silence > max_silence_s:
        why = f"{silence:.1f} s of silence inside, over {max_silence_s:.1f} s"
        return Verdict((f"falls silent: {why}",), 1 + silence / max_silence_s / 10)
    return Verdict()
