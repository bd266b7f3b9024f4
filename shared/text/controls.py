"""What SSML asks of the audio besides its words: a pause of a given length (``<break>``), a
speaking rate (``<prosody rate>``), a named point whose time is reported (``<mark>``).

In the text the chunker reads, each stands as one private-use character, U+F000 plus its
index in the document's list of controls. The chunker cuts a chunk at a pause and at a change
of rate, and each span carries what applies to it: the pause before it, its rate, and its
marks with their places in its spoken text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shared.text.structure import Boundary

BASE = 0xF000
MOST = 0x800  # controls in one document
MARKER = re.compile("[\uf000-\uf7ff]")


@dataclass(frozen=True)
class Pause:
    """A ``<break>``: of ``seconds``, or as long as the stitch's pause at ``strength``."""

    seconds: float | None
    strength: Boundary = Boundary.CLAUSE


@dataclass(frozen=True)
class Rate:
    rate: float  # 1.0 is the voice's own; from here on, until the next


@dataclass(frozen=True)
class Mark:
    name: str


Control = Pause | Rate | Mark


def marker(index: int) -> str:
    return chr(BASE + index)


def cuts(
    text: str, start: int, end: int, controls: Sequence[Control]
) -> Iterator[tuple[int, Boundary]]:
    """Where in ``text[start:end]`` a chunk must end, before each pause and change of rate,
    and the kind of boundary there."""
    for match in MARKER.finditer(text, start, end):
        control = controls[ord(match.group()) - BASE]
        if not isinstance(control, Mark) and match.start() > start:
            kind = control.strength if isinstance(control, Pause) else Boundary.WORD
            yield match.start(), kind


@dataclass(frozen=True)
class Applied:
    """What the controls ask of one span."""

    pause_s: float | None
    rate: float
    marks: tuple[tuple[str, int], ...]  # name, characters of spoken text before it


def apply(
    sources: Sequence[str], spoken: Sequence[str], controls: Sequence[Control]
) -> list[Applied]:
    """For consecutive spans (their ``sources`` and ``spoken`` texts): the pause before each
    (a pause written after a span's last word belongs to the next span), the rate in effect
    at its first word, and its marks."""
    applied: list[Applied] = []
    rate, carried = 1.0, None
    for source, said in zip(sources, spoken, strict=True):
        first, last = _words_span(source)
        pause, carried = carried, None
        span_rate: float | None = None
        marks: list[tuple[str, int]] = []
        for match in MARKER.finditer(source):
            control = controls[ord(match.group()) - BASE]
            if span_rate is None and match.start() >= first:
                span_rate = rate
            if isinstance(control, Mark):
                marks.append((control.name, _spoken_before(source[: match.start()], said)))
            elif isinstance(control, Rate):
                rate = control.rate
            elif control.seconds is None:
                continue  # a strength: the boundary's own pause
            elif match.start() >= last:
                carried = (carried or 0.0) + control.seconds
            else:
                pause = (pause or 0.0) + control.seconds
        applied.append(Applied(pause, rate if span_rate is None else span_rate, tuple(marks)))
    return applied


def _words_span(source: str) -> tuple[int, int]:
    words = [i for i, ch in enumerate(source) if ch.isalnum()]
    return (words[0], words[-1] + 1) if words else (len(source), len(source))


def _spoken_before(written: str, spoken: str) -> int:
    """The characters of ``spoken`` said before a point: the share of the span's words."""
    words = len(MARKER.sub("", written).split())
    return len(" ".join(spoken.split()[:words]))
