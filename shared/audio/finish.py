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
    ramp = _ramp(n)
    out = pcm.astype(np.float32, copy=True)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    return out


def finish_chunk(pcm: np.ndarray, settings: AudioSettings) -> tuple[np.ndarray, ChunkStats]:
    """Trim, fade and measure a decoded chunk."""
    pcm = apply_fades(trim_silence(pcm, settings.silence_threshold_dbfs), settings.fade_ms)
    energy = float(np.dot(pcm.astype(np.float64), pcm.astype(np.float64)))
    return pcm, ChunkStats(len(pcm), step_energies(pcm, SAMPLE_RATE), true_peak(pcm), energy)


class LiveFinish:
    """:func:`finish_chunk` as a chunk's audio arrives: :meth:`feed` gives the samples that are
    now sure to be in the finished chunk, :meth:`close` the rest and the chunk's stats. The
    pieces joined are ``finish_chunk``'s samples, so a listener who falls back to the stored
    chunk part-way resumes at the same sample.

    Held back, at most: the silence after the last loud window (it is cut if nothing loud
    follows) and the fade-out's length (it is faded only if the chunk ends there)."""

    def __init__(self, settings: AudioSettings) -> None:
        self.threshold = settings.silence_threshold_dbfs
        self.window = round(WINDOW_S * SAMPLE_RATE)
        self.margin = round(_MARGIN_S * SAMPLE_RATE)
        self.fade = round(settings.fade_ms / 1000 * SAMPLE_RATE)
        self.raw = np.zeros(0, np.float32)  # samples from ``offset`` on, not given out yet
        self.offset = 0  # raw samples dropped or given out before ``raw``
        self.windows = 0  # whole windows looked at
        self.start: int | None = None  # the first kept sample, once a loud window is heard
        self.loud_end = 0  # the end of the last loud window
        self.given: list[np.ndarray] = []

    def feed(self, pcm: np.ndarray) -> np.ndarray:
        self.raw = np.concatenate([self.raw, pcm.astype(np.float32, copy=False)])
        self._look()
        if self.start is None:  # keep only what a first loud window could reach back to
            keep = max(self.windows * self.window - self.margin, 0) - self.offset
            self._drop(max(keep, 0))
            return np.zeros(0, np.float32)
        total = self.offset + len(self.raw)
        sure = min(self.loud_end + self.margin, total) - self.fade
        return self._give(sure)

    def close(self) -> tuple[np.ndarray, ChunkStats]:
        """The rest of the finished chunk, and the stats of all of it. (A chunk shorter than
        two fades is faded less by ``finish_chunk``; here its fade-in has gone out whole.)"""
        rest = np.zeros(0, np.float32)
        if self.start is not None:
            total = self.offset + len(self.raw)
            rest = self._give(min(self.loud_end + self.margin, total), last=True)
        pcm = np.concatenate(self.given) if self.given else rest
        energy = float(np.dot(pcm.astype(np.float64), pcm.astype(np.float64)))
        stats = ChunkStats(len(pcm), step_energies(pcm, SAMPLE_RATE), true_peak(pcm), energy)
        return rest, stats

    @property
    def samples(self) -> int:
        """Samples of the finished chunk given out so far."""
        return sum(len(piece) for piece in self.given)

    def _look(self) -> None:
        """Judge the whole windows not judged yet."""
        total = self.offset + len(self.raw)
        first = self.windows * self.window - self.offset
        whole = (total // self.window) - self.windows
        if whole <= 0:
            return
        loud = np.flatnonzero(loud_windows(self.raw[first:], self.threshold)[:whole])
        if len(loud):
            if self.start is None:
                self.start = max((self.windows + loud[0]) * self.window - self.margin, 0)
            self.loud_end = (self.windows + loud[-1] + 1) * self.window
        self.windows += whole

    def _drop(self, samples: int) -> None:
        self.raw, self.offset = self.raw[samples:], self.offset + samples

    def _give(self, end: int, last: bool = False) -> np.ndarray:
        """Samples up to ``end`` (absolute), faded where they are the chunk's first or last."""
        assert self.start is not None
        if self.offset < self.start:
            self._drop(self.start - self.offset)
        out = self.raw[: max(end - self.offset, 0)].copy()
        given = self.samples
        fade_in = self.fade - given
        if fade_in > 0 and len(out):
            n = min(self.fade, fade_in, len(out))
            out[:n] *= _ramp(self.fade)[given : given + n]
        if last and self.fade and len(out):
            n = min(self.fade, len(out))
            out[-n:] *= _ramp(self.fade)[::-1][self.fade - n :]
        self._drop(len(out))
        self.given.append(out)
        return out


def _ramp(n: int) -> np.ndarray:
    """:func:`apply_fades`' raised cosine, rising over ``n`` samples."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)
