"""Speech made faster or slower at its own pitch, as it streams: FFmpeg's ``atempo`` filter (it
overlaps and adds windows of the signal where they line up, WSOLA-like) through PyAV's filter
graph. One :class:`TimeStretch` per stream: the filter keeps a little audio between calls, so
blocks join without a seam.

``atempo`` blends windows for factors from 0.5 to 2; outside that it would drop or repeat
whole windows, so a speed such as 4 or 0.25 runs as a chain (2 x 2, 0.5 x 0.5).
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter
import numpy as np

from shared.audio import SAMPLE_RATE

MIN_SPEED, MAX_SPEED = 0.25, 4.0
FRAME = 1024  # samples pushed at a time: what the filter holds back is about this much


def atempo_factors(speed: float) -> list[float]:
    """``speed`` as a product of factors each within atempo's blending range [0.5, 2]."""
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"speed {speed} is outside {MIN_SPEED}..{MAX_SPEED}")
    factors, rest = [], speed
    while rest > 2.0:
        factors.append(2.0)
        rest /= 2.0
    while rest < 0.5:
        factors.append(0.5)
        rest /= 0.5
    return [*factors, rest]


class TimeStretch:
    """Float32 mono PCM at ``SAMPLE_RATE`` in, the same speech ``speed`` times as fast out
    (2: half as long), pitch kept. :meth:`flush` gives what the filter still holds."""

    def __init__(self, speed: float) -> None:
        self.speed = speed
        self.graph = av.filter.Graph()
        nodes = [
            self.graph.add_abuffer(
                sample_rate=SAMPLE_RATE,
                format="flt",
                layout="mono",
                time_base=Fraction(1, SAMPLE_RATE),
            )
        ]
        nodes += [self.graph.add("atempo", f"{factor:.6f}") for factor in atempo_factors(speed)]
        nodes.append(self.graph.add("abuffersink"))
        self.graph.link_nodes(*nodes).configure()
        self._pts = 0
        self._ended = False

    def process(self, pcm: np.ndarray) -> np.ndarray:
        """Push ``pcm`` in small frames: atempo sends its output on in frames as long as
        those it was given, so a whole chunk in one frame would come out a chunk late."""
        data = np.ascontiguousarray(pcm, np.float32)
        out = []
        for start in range(0, len(data), FRAME):
            block = data[start : start + FRAME].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="flt", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, self._pts
            frame.time_base = Fraction(1, SAMPLE_RATE)
            self._pts += block.shape[1]
            self.graph.push(frame)
            out.append(self._pull())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        if self._ended:
            return np.zeros(0, np.float32)
        self._ended = True
        self.graph.push(None)
        return self._pull()

    def _pull(self) -> np.ndarray:
        out = []
        while True:
            try:
                frame = self.graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        return np.concatenate(out) if out else np.zeros(0, np.float32)
