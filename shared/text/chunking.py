"""Long text to speakable spans: each span becomes one chunk row, one engine request.

The normalised text is cut into consecutive spans that cover it exactly (``span.source``),
so nothing the user sent is silently lost. Each span carries what is spoken (``span.text``),
its voice, and the kind of boundary before it, which the stitch turns into a pause.

Structure kept: chapters (Markdown headings, or a lone "Chapter …" line), paragraphs (blank
lines), speaker turns (a line starting ``voice:`` with a known voice). Spans never cross a
paragraph; inside one, whole sentences are packed up to ``max_chars``, and an over-long
sentence is cut at clauses, then between words, never inside a word. SSML's pauses and rates
(``shared.text.controls``) cut a span too, and each span carries the pause before it, its
rate and its marks.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from shared.text import controls as ssml_controls
from shared.text.normalize import normalize_text
from shared.text.spoken import is_speakable, spoken_size, spoken_text
from shared.text.structure import Boundary, segments

_STRENGTH = {kind: rank for rank, kind in enumerate(Boundary)}


@dataclass(frozen=True)
class TextSpan:
    """A slice of the text that is spoken in one request (a chunk, once it is in the farm)."""

    index: int
    source: str  # the exact slice of the normalised text
    text: str  # what is spoken
    voice: str | None  # from a "voice:" label; None means the job's voice
    boundary: Boundary
    chapter: int  # index into ChunkedText.chapters
    pause_s: float | None = None  # before it, where SSML says (else the boundary's)
    rate: float = 1.0  # of its speech, where SSML says
    marks: tuple[tuple[str, int], ...] = ()  # SSML's marks: name, spoken characters before


@dataclass
class ChunkedText:
    normalized: str
    spans: list[TextSpan]
    chapters: list[str]  # titles; "" for text before the first heading
    removed_tags: Counter[str] = field(default_factory=Counter)

    @property
    def warnings(self) -> list[str]:
        return [
            f"removed {count} unsupported tag(s) <{tag}>: Orpheus would read them aloud"
            for tag, count in sorted(self.removed_tags.items())
        ]


# --- splitting inside a segment ----------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+")
_CLAUSE_END = re.compile(r"[,;:—–]+[\"'”’»)\]]*\s+")
_WORD_END = re.compile(r"\s+")
_ABBREVIATIONS = {"mr", "mrs", "ms", "dr", "st", "prof", "sr", "jr", "vs", "e.g", "i.e", "no", "mt"}


def _is_sentence_cut(text: str, match: re.Match[str]) -> bool:
    nxt = text[match.end() : match.end() + 1]
    if nxt.islower():
        return False
    if text[match.start()] != ".":
        return True
    word = text[: match.start()].rsplit(None, 1)[-1] if text[: match.start()].strip() else ""
    word = word.lstrip("(\"'“‘").lower()
    return not (word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()))


_LEVELS = (
    (_SENTENCE_END, Boundary.SENTENCE),
    (_CLAUSE_END, Boundary.CLAUSE),
    (_WORD_END, Boundary.WORD),
)


def sentences(text: str) -> list[str]:
    """A span's text cut into sentences where the chunker would cut it."""
    cuts = [
        m.end()
        for m in _SENTENCE_END.finditer(text)
        if m.end() < len(text) and _is_sentence_cut(text, m)
    ]
    return [text[a:b].strip() for a, b in itertools.pairwise([0, *cuts, len(text)])]


def _pieces(text: str, start: int, end: int, max_chars: int, level: int = 0):
    """Cut [start, end) into units of this level, recursing into those still too long.

    Yields (start, end, boundary_before, fresh). A unit that had to be cut further starts a
    fresh chunk, so that its pieces are not glued onto the unit before it: cuts stay at the
    strongest boundary available.
    """
    pattern, kind = _LEVELS[level]
    cuts = [
        m.end()
        for m in pattern.finditer(text, start, end)
        if m.end() < end and (level > 0 or _is_sentence_cut(text, m))
    ]
    bounds = [start, *cuts, end]
    for s, e in itertools.pairwise(bounds):
        if spoken_size(text[s:e]) > max_chars and level + 1 < len(_LEVELS):
            first = True
            for ps, pe, pkind, fresh in _pieces(text, s, e, max_chars, level + 1):
                yield ps, pe, (kind if first else pkind), (first or fresh)
                first = False
        else:
            yield s, e, kind, False


def _pack(
    text: str, pieces, max_chars: int, ramp_chars: int = 0, before: int = 0
) -> list[tuple[int, int, Boundary]]:
    """Greedily join consecutive pieces while what is said for them (numbers in words) stays
    within max_chars; with ``ramp_chars``, the text's span number k (``before`` spans came
    earlier) within ``ramp_chars * 2**k`` if that is less."""
    packed: list[tuple[int, int, Boundary]] = []
    size = 0  # of the last packed span: its pieces' sizes and a space between each
    for s, e, kind, fresh in pieces:
        limit = max_chars
        if ramp_chars and packed:
            limit = min(max_chars, ramp_chars << min(before + len(packed) - 1, 16))
        piece = spoken_size(text[s:e])
        if packed and not fresh and size + 1 + piece <= limit:
            packed[-1] = (packed[-1][0], e, packed[-1][2])
            size += 1 + piece
        else:
            packed.append((s, e, kind))
            size = piece
    return packed


# --- the whole text ----------------------------------------------------------------------------


def chunk_text(
    raw: str,
    max_chars: int = 400,
    *,
    structured: bool = False,
    ramp_chars: int = 0,
    controls: Sequence[ssml_controls.Control] = (),
) -> ChunkedText:
    """Normalise ``raw`` and cut it into spans whose sources concatenate back to it.
    ``structured``: the chapters are the Markdown headings alone (a book read from EPUB or
    HTML), not also lines such as "Chapter 3". ``ramp_chars``: the first span packs sentences
    up to this many characters, the next up to twice as many, and so on up to ``max_chars``
    (a sentence is never cut for it): someone listening as the chunks are made hears the
    first sooner, and each next one is made, all being made at once, before the ones before
    it have been heard. ``controls``: SSML's, their markers in ``raw``."""
    text = normalize_text(raw)
    removed: Counter[str] = Counter()
    chapters = [""]  # chapter 0 holds any text before the first heading
    spans: list[_Span] = []
    for seg in segments(text, plain_headings=not structured):
        if seg.heading:
            chapters.append(spoken_text(text[seg.body : seg.end], Counter()))
        pieces = _controlled(text, seg.body, seg.end, max_chars, controls)
        packed = _pack(text, pieces, max_chars, ramp_chars, len(spans))
        for i, (s, e, kind) in enumerate(packed):
            first = i == 0
            spoken = spoken_text(text[max(s, seg.body) : e], removed)
            spans.append(
                _Span(
                    seg.start if first else s,
                    e,
                    spoken,
                    seg.boundary if first else kind,
                    seg.voice,
                    len(chapters) - 1,
                )
            )
    merged = _merge_unspeakable(text, spans)
    used = sorted({span.chapter for span in merged})
    renumber = {old: new for new, old in enumerate(used)}
    merged = [replace(span, chapter=renumber[span.chapter]) for span in merged]
    if controls:
        applied = ssml_controls.apply(
            [s.source for s in merged], [s.text for s in merged], controls
        )
        merged = [
            replace(span, pause_s=a.pause_s, rate=a.rate, marks=a.marks)
            for span, a in zip(merged, applied, strict=True)
        ]
    return ChunkedText(text, merged, [chapters[i] for i in used], removed)


def _controlled(text: str, start: int, end: int, max_chars: int, controls):
    """The pieces of [start, end), a fresh span after each pause and change of rate."""
    cuts = [(start, Boundary.WORD), *ssml_controls.cuts(text, start, end, controls), (end, None)]
    for k, ((a, cut), (b, _)) in enumerate(itertools.pairwise(cuts)):
        for n, (s, e, kind, fresh) in enumerate(_pieces(text, a, b, max_chars)):
            yield (s, e, cut, True) if k and not n else (s, e, kind, fresh)


@dataclass
class _Span:
    start: int
    end: int
    spoken: str
    boundary: Boundary
    voice: str | None
    chapter: int


def _merge_unspeakable(text: str, spans: list[_Span]) -> list[TextSpan]:
    """Fold spans with nothing to say into a neighbour, keeping the stronger boundary."""
    kept: list[_Span] = []
    lead_start: int | None = None  # unspeakable text before the first speakable span
    carried = Boundary.START  # strongest boundary folded away since the last kept span
    for span in spans:
        if not is_speakable(span.spoken):
            if kept:
                kept[-1].end = span.end
            elif lead_start is None:
                lead_start = span.start
            carried = max(carried, span.boundary, key=_STRENGTH.__getitem__)
            continue
        if not kept and lead_start is not None:
            span.start = lead_start
        span.boundary = max(carried, span.boundary, key=_STRENGTH.__getitem__)
        carried = Boundary.START
        kept.append(span)
    return [
        TextSpan(
            index=i,
            source=text[s.start : s.end],
            text=s.spoken,
            voice=s.voice,
            boundary=Boundary.START if i == 0 else s.boundary,
            chapter=s.chapter,
        )
        for i, s in enumerate(kept)
    ]
