"""A text's structure as the chunker reads it: chapters (Markdown headings, or a lone
"Chapter …" line), paragraphs (blank lines), speaker turns (a line starting ``voice:`` with a
known voice). Each segment is a heading, a speaker turn or a paragraph."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

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


_MD_HEADING = re.compile(r"#{1,6} +(?=\S)")
_PLAIN_HEADING = re.compile(
    r"(chapter|part|book|prologue|epilogue|preface|introduction|afterword)\b[^.!?\n]{0,60}",
    re.IGNORECASE,
)
_SPEAKER = re.compile(r"([A-Za-z]+): +(?=\S)")
# Back to the job's own voice after a speaker's turn (SSML's </voice>): U+F8FF, then the words.
JOB_VOICE = "\uf8ff"
_JOB_VOICE = re.compile(f"{JOB_VOICE}()")


@dataclass
class Segment:
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


def segments(text: str, plain_headings: bool = True) -> Iterator[Segment]:
    """Group lines into segments: headings, speaker turns and paragraphs. Without
    ``plain_headings`` only Markdown headings start a chapter (a book's structure is known)."""
    voice: str | None = None
    current: Segment | None = None
    for start, end, new_paragraph in _lines(text):
        line = text[start:end].rstrip("\n")
        heading = _MD_HEADING.match(line)
        plain = plain_headings and new_paragraph and _PLAIN_HEADING.fullmatch(line)
        if heading or plain:
            if current:
                yield current
            body = start + (heading.end() if heading else 0)
            current, voice = None, None  # a speaker label lasts until the next chapter
            yield Segment(start, body, end, Boundary.CHAPTER, voice, heading=True)
            continue
        label = _SPEAKER.match(line) or _JOB_VOICE.match(line)
        said = label and (label.group(1) or "").lower()
        if label and (said in VOICES or label.re is _JOB_VOICE):
            if current:
                yield current
            kind = Boundary.SPEAKER if (said or None) != voice else Boundary.PARAGRAPH
            voice = said or None
            current = Segment(start, start + label.end(), end, kind, voice, heading=False)
        elif current is None or new_paragraph:
            if current:
                yield current
            current = Segment(start, start, end, Boundary.PARAGRAPH, voice, heading=False)
        else:
            current.end = end
    if current:
        yield current
