"""ACX's audio requirements, measured on a file as it was written (decoded back, streamed).

ACX (Audible's production platform) asks of every file: RMS between -23 and -18 dBFS, peaks at
most -3 dBFS, a noise floor at most -60 dBFS (the RMS of the quietest half second), 0.5–1 s of
room tone at the head and 1–5 s at the tail, at most 120 minutes, a 192 kbps constant bit rate
MP3 at 44.1 kHz. The report says each figure and whether it passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np

WINDOW_S = 0.5  # the noise floor's window
SILENCE_DBFS = -50.0  # quieter than this, in 10 ms windows, is room tone at a file's edges
EDGE_WINDOW_S = 0.01
LIMITS: dict[str, tuple[float, float]] = {
    "rms_dbfs": (-23.0, -18.0),
    "peak_dbfs": (-math.inf, -3.0),
    "noise_floor_dbfs": (-math.inf, -60.0),
    "head_room_tone_s": (0.5, 1.0),
    "tail_room_tone_s": (1.0, 5.0),
    "duration_s": (0.0, 120 * 60.0),
    "sample_rate_hz": (44100, 44100),
    "bitrate_kbps": (192, 192),
}


@dataclass
class _Running:
    """Sums kept while the file streams by, so that a two-hour file needs no memory."""

    rate: int = 0
    samples: int = 0
    squares: float = 0.0
    peak: float = 0.0
    quietest: float = math.inf  # mean square of the quietest whole window
    first_loud: int | None = None  # in edge windows
    last_loud: int = -1
    carry: np.ndarray | None = None

    def add(self, pcm: np.ndarray) -> None:
        self.squares += float(np.dot(pcm, pcm))
        self.peak = max(self.peak, float(np.abs(pcm).max(initial=0.0)))
        data = pcm if self.carry is None else np.concatenate([self.carry, pcm])
        edge = round(EDGE_WINDOW_S * self.rate)
        whole = len(data) // edge * edge
        windows = (data[:whole].reshape(-1, edge).astype(np.float64) ** 2).mean(axis=1)
        offset = (self.samples - (0 if self.carry is None else len(self.carry))) // edge
        loud = np.flatnonzero(windows > 10 ** (SILENCE_DBFS / 10))
        if len(loud):
            self.first_loud = offset + int(loud[0]) if self.first_loud is None else self.first_loud
            self.last_loud = offset + int(loud[-1])
        per = round(WINDOW_S / EDGE_WINDOW_S)  # half-second windows from whole 10 ms ones
        halves = len(windows) // per
        if halves:
            means = windows[: halves * per].reshape(halves, per).mean(axis=1)
            self.quietest = min(self.quietest, float(means.min()))
        self.carry = data[halves * per * edge :]
        self.samples += len(pcm)


def _db(power: float) -> float:
    return 10 * math.log10(power) if power > 0 else -math.inf


def measure(path: Path | str) -> dict[str, float]:
    """The figures ACX checks, from the decoded file."""
    running = _Running()
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        running.rate = stream.rate
        bitrate = (stream.bit_rate or container.bit_rate or 0) / 1000
        for frame in container.decode(stream):
            pcm = frame.to_ndarray().astype(np.float64)
            running.add(pcm.mean(axis=0) if pcm.ndim == 2 else pcm)
    rate, n = running.rate, running.samples
    edge = EDGE_WINDOW_S
    first = running.first_loud if running.first_loud is not None else n / rate / edge
    return {
        "rms_dbfs": round(_db(running.squares / max(n, 1)), 2),
        "peak_dbfs": round(20 * math.log10(running.peak) if running.peak else -math.inf, 2),
        "noise_floor_dbfs": round(_db(running.quietest), 2) if running.quietest < math.inf else 0,
        "head_room_tone_s": round(first * edge, 3),
        "tail_room_tone_s": round(max(n / rate - (running.last_loud + 1) * edge, 0.0), 3),
        "duration_s": round(n / rate, 3),
        "sample_rate_hz": rate,
        "bitrate_kbps": round(bitrate),
    }


def report(figures: dict[str, float], constant_bitrate: bool) -> dict[str, Any]:
    """Each requirement with its figure, its limits and whether it passes."""
    checks: dict[str, dict[str, Any]] = {
        name: {"value": value, "min": LIMITS[name][0], "max": LIMITS[name][1]}
        | {"passed": LIMITS[name][0] <= value <= LIMITS[name][1]}
        for name, value in figures.items()
    }
    checks["constant_bitrate"] = {"value": constant_bitrate, "passed": constant_bitrate}
    for check in checks.values():  # JSON has no infinity
        for key in ("min", "max", "value"):
            if isinstance(check.get(key), float) and not math.isfinite(check[key]):
                check[key] = None
    return {"passed": all(c["passed"] for c in checks.values()), "checks": checks}
