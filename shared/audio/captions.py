"""Captions: one cue per sentence, timed from where each chunk lies in the programme.

A chunk's start is exact (the stitch places it). A chunk of several sentences is timed inside
by characters, each estimate then moved to the end of the quietest stretch near it in the
chunk's stored 100 ms loudness steps: the pause before a sentence is where its speech begins.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.audio.loudness import STEP_S

SEARCH_S = 0.6  # how far from its estimate a sentence's start is looked for
QUIET = 0.05  # a step under this share of the chunk's median energy is a pause


@dataclass(frozen=True)
class Cue:
    start: float  # seconds in the programme
    end: float
    text: str


def chunk_cues(
    sentences: list[str], start_s: float, duration_s: float, steps: np.ndarray
) -> list[Cue]:
    """Cues for a chunk's sentences; the chunk's audio runs from ``start_s`` for
    ``duration_s``, its loudness per 100 ms is ``steps``."""
    lengths = np.array([max(len(s), 1) for s in sentences], float)
    starts = [0.0]
    for fraction in np.cumsum(lengths)[:-1] / lengths.sum():
        starts.append(_onset_near(fraction * duration_s, steps, starts[-1]))
    ends = [*starts[1:], duration_s]
    return [
        Cue(round(start_s + a, 3), round(start_s + max(b, a + STEP_S), 3), text)
        for a, b, text in zip(starts, ends, sentences, strict=True)
    ]


def _onset_near(estimate: float, steps: np.ndarray, after: float) -> float:
    """The end of the quiet run nearest ``estimate`` (within SEARCH_S), else the estimate."""
    if len(steps) == 0:
        return estimate
    quiet = steps < QUIET * float(np.median(steps))
    lo = max(int((estimate - SEARCH_S) / STEP_S), int(after / STEP_S) + 1)
    hi = min(int((estimate + SEARCH_S) / STEP_S) + 1, len(steps) - 1)
    ends = [i + 1 for i in range(lo, hi) if quiet[i] and not quiet[i + 1]]
    if not ends:
        return estimate
    return min(ends, key=lambda i: abs(i * STEP_S - estimate)) * STEP_S


def clock(seconds: float, separator: str = ".") -> str:
    """HH:MM:SS and milliseconds after ``separator``: WebVTT's ".", SRT's ",", and the
    Vorbis comments' chapter times (``shared.audio.encode``)."""
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def _clean(text: str) -> str:
    """A cue's text on one line, with nothing a caption format would read as markup."""
    text = " ".join(text.replace("-->", "→").split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webvtt(cues: list[Cue]) -> str:
    lines = ["WEBVTT", ""]
    for i, cue in enumerate(cues, 1):
        lines += [
            str(i),
            f"{clock(cue.start, '.')} --> {clock(cue.end, '.')}",
            _clean(cue.text),
            "",
        ]
    return "\n".join(lines)


def srt(cues: list[Cue]) -> str:
    lines = []
    for i, cue in enumerate(cues, 1):
        text = " ".join(cue.text.split())
        lines += [str(i), f"{clock(cue.start, ',')} --> {clock(cue.end, ',')}", text, ""]
    return "\n".join(lines)
