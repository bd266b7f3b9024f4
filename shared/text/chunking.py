"""Long text to speakable spans: each span becomes one chunk row, one engine request.

The normalised text is cut into consecutive spans that cover it exactly (``span.source``),
so nothing the user sent is silently lost. Each span carries what is spoken (``span.text``),
its voice, and the kind of boundary before it, which the stitch turns into a pause.

Structure kept: chapters (Markdown headings, or a lone "Chapter …" line), paragraphs (blank
lines), speaker turns (a line starting ``voice:`` with a known voice). Spans never cross a
paragraph; inside one, whole sentences are packed up to ``max_chars``, and an over-long
sentence is cut at clauses, then between words, never inside a word.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import StrEnum

from shared.text.normalize import normalize_text
from shared.text.spoken import is_speakable, spoken_size, spoken_text
from shared.text.voices import VOICES


class Boundary(StrEnum):
    """What separates a chunk from the one before it, weakest first."""

    START = "start"
    WORD = "word"
    CLAUSE = "clause"
    SENTENCE = "sentence"
    PARAGRAPH = "paragraph"
    SPEAKER = "speaker"
    CHAPTER = "chapter"


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


# --- structure -------------------------------------------------------------------------------

_MD_HEADING = re.compile(r"#{1,6} +(?=\S)")
_PLAIN_HEADING = re.compile(
    r"(chapter|part|book|prologue|epilogue|preface|introduction|afterword)\b[^.!?\n]{0,60}",
    re.IGNORECASE,
)
_SPEAKER = re.compile(r"([A-Za-z]+): +(?=\S)")


@dataclass
class _Segment:
    start: int
    body: int  # where the spoken part begins (after a heading mark or a speaker label)
    end: int
    boundary: Boundary
    voice: str | None
    heading: bool


def _lines(text: str) -> Iterator[tuple[int, int, bool]]:
    """Yield (start, end, starts_paragraph) for each line; end includes the newline(s)."""
    for para in re.finditer(r".+?(?:\n\n|\Z)", text, re.DOTALL):
        first = True
        for line in re.finditer(r".*?(?:\n|\Z)", para.group(), re.DOTALL):
            if line.end() > line.start():
                yield para.start() + line.start(), para.start() + line.end(), first
                first = False


def _segments(text: str, plain_headings: bool = True) -> Iterator[_Segment]:
    """Group lines into segments: headings, speaker turns and paragraphs. Without
    ``plain_headings`` only Markdown headings start a chapter (a book's structure is known)."""
    voice: str | None = None
    current: _Segment | None = None
    for start, end, new_paragraph in _lines(text):
        line = text[start:end].rstrip("\n")
        heading = _MD_HEADING.match(line)
        plain = plain_headings and new_paragraph and _PLAIN_HEADING.fullmatch(line)
        if heading or plain:
            if current:
                yield current
            body = start + (heading.end() if heading else 0)
            current, voice = None, None  # a speaker label lasts until the next chapter
            yield _Segment(start, body, end, Boundary.CHAPTER, voice, heading=True)
            continue
        label = _SPEAKER.match(line)
        if label and label.group(1).lower() in VOICES:
            if current:
                yield current
            kind = Boundary.SPEAKER if label.group(1).lower() != voice else Boundary.PARAGRAPH
            voice = label.group(1).lower()
            current = _Segment(start, start + label.end(), end, kind, voice, heading=False)
        elif current is None or new_paragraph:
            if current:
                yield current
            current = _Segment(start, start, end, Boundary.PARAGRAPH, voice, heading=False)
        else:
            current.end = end
    if current:
        yield current


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
    raw: str, max_chars: int = 400, *, structured: bool = False, ramp_chars: int = 0
) -> ChunkedText:
    """Normalise ``raw`` and cut it into spans whose sources concatenate back to it.
    ``structured``: the chapters are the Markdown headings alone (a book read from EPUB or
    HTML), not also lines such as "Chapter 3". ``ramp_chars``: the first span packs sentences
    up to this many characters, the next up to twice as many, and so on up to ``max_chars``
    (a sentence is never cut for it): someone listening as the chunks are made hears the
    first sooner, and each next one is made, all being made at once, before the ones before
    it have been heard."""
    text = normalize_text(raw)
    removed: Counter[str] = Counter()
    chapters = [""]  # chapter 0 holds any text before the first heading
    spans: list[_Span] = []
    for seg in _segments(text, plain_headings=not structured):
        if seg.heading:
            chapters.append(spoken_text(text[seg.body : seg.end], Counter()))
        pieces = _pieces(text, seg.body, seg.end, max_chars)
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
    return ChunkedText(text, merged, [chapters[i] for i in used], removed)


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
