"""What a listener hears of a page: its events (``shared.text.markup``) walked into headings and
paragraphs, in reading order. The rules, as the README states them:

- Headings and paragraphs are read; a list's items each as a paragraph.
- A table is read a row at a time, its cells joined by commas: "Hour, Task." "20:00, Trim
  the wick."
- A figure is read by its caption; an image in a figure without one, by its alt text.
- Code (``<pre>``) is left out and counted: a command read aloud is of no use to a listener.
- Footnotes are left out with their markers: an EPUB 3 ``noteref``, ARIA's ``doc-noteref``,
  the classes the toolchains give them (``footnote-ref``, ``footnote``, …) or a short link
  inside ``<sup>``; and the notes they point at, or those marked as notes.
- Scripts, styles, navigation, page breaks and title pages are not read.

Each block keeps the ids its text starts under (``anchors``), so that a book's table of
contents can start a chapter in the middle of a page.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from shared.text.markup import Event

BLOCK_TAGS = frozenset(
    "p div section article header footer main blockquote li dd dt figcaption caption"
    " table ul ol dl h1 h2 h3 h4 h5 h6 hr body aside figure".split()
)
SKIPPED_TAGS = frozenset("head script style nav template svg math noscript".split())
# EPUB 3 structural semantics and ARIA roles a listener does not hear
NOT_READ = frozenset(
    "noteref footnote footnotes endnote endnotes rearnote rearnotes note toc landmarks"
    " page-list pagebreak cover copyright-page index titlepage halftitlepage doc-noteref"
    " doc-footnote doc-endnote doc-endnotes doc-pagebreak doc-toc doc-index".split()
)
# What Pandoc, Sphinx (docutils), DocBook XSL and Calibre call notes and their markers
NOTE_CLASSES = frozenset(
    "footnote footnotes footnote-ref footnote-reference footnote-list footnote-back".split()
)
NOTES_LABELS = frozenset({"footnotes", "notes", "endnotes"})
_MARKER = re.compile(r"[\[\(]?(\d{1,3}|[*†‡§¶a-z])[\]\)]?")


@dataclass(frozen=True)
class Block:
    text: str
    heading: int = 0  # 1-6 for <h1>…<h6>, 0 for a paragraph
    anchors: tuple[str, ...] = ()  # ids of the elements its text starts under


def _types(attrs: dict[str, str]) -> set[str]:
    return set(attrs.get("epub:type", "").split()) | set(attrs.get("role", "").split())


def _is_marker(events: list[Event], i: int) -> bool:
    """A footnote marker: ``<a epub:type="noteref">``, or ``<sup>`` around a short link."""
    _, tag, attrs = events[i]
    if tag == "a" and ({"noteref", "doc-noteref"} & _types(attrs)):
        return True
    if tag != "sup" or i + 2 >= len(events):
        return False
    kind, inner, inner_attrs = events[i + 1]
    label = events[i + 2][1] if events[i + 2][0] == "text" else ""
    return (
        kind == "start"
        and inner == "a"
        and "#" in inner_attrs.get("href", "")
        and bool(_MARKER.fullmatch(label.strip()))
    )


def note_targets(events: list[Event]) -> set[str]:
    """Ids that footnote markers point at: the notes themselves are not read either."""
    targets = set()
    for i, (kind, tag, attrs) in enumerate(events):
        if kind == "start" and _is_marker(events, i):
            link = attrs if tag == "a" else events[i + 1][2]
            targets.add(link.get("href", "").partition("#")[2])
    return targets - {""}


def _notes(attrs: dict[str, str]) -> bool:
    """Notes, or a list of them, by their semantics or the class a toolchain gives them."""
    kinds = _types(attrs) | set(attrs.get("class", "").split())
    return bool(kinds & (NOTE_CLASSES | {"footnotes", "endnotes", "doc-endnotes"}))


def not_read(events: list[Event], i: int, targets: set[str]) -> bool:
    """Whether the element starting at ``events[i]`` is left out with all it holds."""
    _, tag, attrs = events[i]
    return (
        tag in SKIPPED_TAGS
        or bool(_types(attrs) & NOT_READ)
        or bool(set(attrs.get("class", "").split()) & NOTE_CLASSES)
        or attrs.get("id", "") in targets
        or _is_marker(events, i)
    )


@dataclass
class _Walk:
    """The walker's state: the text gathered for the next block, and where it is."""

    out: list[Block] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    heading: int = 0
    anchors: list[str] = field(default_factory=list)
    cells: list[str] | None = None  # inside a table's row: its cells so far
    figures: list[list[str]] = field(default_factory=list)  # open figures' alt texts
    captioned: list[bool] = field(default_factory=list)  # whether each open figure has one
    divs: list[bool] = field(default_factory=list)  # open <div>s: whether each is a figure

    def flush(self) -> None:
        if self.cells is not None:  # a row's cell, kept until the row ends
            self.cells.append(" ".join("".join(self.text).split()))
            self.text.clear()
            return
        joined = " ".join("".join(self.text).split())
        if joined:
            self.out.append(Block(joined, self.heading, tuple(self.anchors)))
            self.anchors.clear()
            if self.captioned and not self.heading:
                self.captioned[-1] = True
        self.text.clear()
        self.heading = 0

    def drop_label(self) -> None:
        """The label just before notes that are not read ("Footnotes", Sphinx's rubric)."""
        self.flush()
        if self.out and self.out[-1].text.casefold().rstrip(":") in NOTES_LABELS:
            self.out.pop()

    def row(self, kind: str) -> None:
        """A table row starts gathering cells, or ends as one block."""
        if kind == "start":
            self.flush()
            self.cells = []
            return
        self.flush()
        cells, self.cells = [c for c in self.cells or [] if c], None
        if cells:
            self.text.append(", ".join(cells).rstrip(".") + ".")
            self.flush()

    def figure(self, kind: str) -> None:
        """A figure is read by its caption: its images' alt text only where it has none."""
        self.flush()
        if kind == "start":
            self.figures.append([])
            self.captioned.append(False)
            return
        alts, captioned = self.figures.pop(), self.captioned.pop()
        if not captioned and alts:
            self.text.append(" ".join(alts))
            self.flush()


def blocks(events: list[Event], left_out: Counter[str] | None = None) -> list[Block]:
    """Headings and paragraphs in reading order, whitespace collapsed, empty ones dropped;
    ``left_out`` counts what was not read for a listener's sake (code blocks)."""
    targets = note_targets(events)
    walk = _Walk()
    skipping: list[str] = []  # the tag whose subtree is skipped, and nested ones of that tag
    for i, (kind, tag, attrs) in enumerate(events):
        if skipping:
            if kind != "text" and tag == skipping[0]:
                skipping.append(tag) if kind == "start" else skipping.pop()
        elif kind == "text":
            walk.text.append(tag)
        elif kind == "start" and (tag == "pre" or not_read(events, i, targets)):
            if tag == "pre" and left_out is not None:
                left_out["code block"] += 1
            if _notes(attrs):
                walk.drop_label()
            skipping.append(tag)
        else:
            _structure(walk, kind, tag, attrs)
    walk.flush()
    return walk.out


def _structure(walk: _Walk, kind: str, tag: str, attrs: dict[str, str]) -> None:
    """An element's start or end: where blocks begin and end."""
    if kind == "start" and attrs.get("id"):
        walk.anchors.append(attrs["id"])
    if tag == "br":
        walk.text.append(" ")
    elif tag == "tr":
        walk.row(kind)
    elif tag in ("td", "th") and walk.cells is not None:
        walk.flush()
    elif tag == "img" and kind == "start" and walk.figures and attrs.get("alt", "").strip():
        walk.figures[-1].append(attrs["alt"].strip())
    elif tag == "figure" or (tag == "div" and _closes_figure(walk, kind, attrs)):
        walk.figure(kind)
    elif tag in BLOCK_TAGS and walk.cells is None:
        walk.flush()
        if kind == "start" and re.fullmatch(r"h[1-6]", tag):
            walk.heading = int(tag[1])


def _closes_figure(walk: _Walk, kind: str, attrs: dict[str, str]) -> bool:
    """Whether this ``<div>`` starts or ends a figure (``class="figure"``: EPUB 2's, DocBook's);
    an end tag carries no class, so the open ones are remembered."""
    if kind == "start":
        walk.divs.append("figure" in attrs.get("class", "").split())
        return walk.divs[-1]
    return walk.divs.pop() if walk.divs else False


def left_out_warnings(left_out: Counter[str]) -> list[str]:
    """``left out 2 code blocks (not read aloud)``: what a book's reading did not read."""
    return [
        f"left out {n} {what}{'' if n == 1 else 's'} (not read aloud)"
        for what, n in sorted(left_out.items())
    ]
