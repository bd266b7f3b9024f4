"""(X)HTML to the blocks a listener hears: headings and paragraphs, in reading order.

Both parsers feed one walker a stream of events, so that an EPUB's XHTML (strict XML; a page
that is not well-formed is read by the lenient parser, as a reading system would) and a web
page's HTML (lenient) read the same way. What a
listener should not hear is left out: scripts and styles, navigation, footnote markers (an
EPUB 3 ``noteref``, or a short link inside ``<sup>``) and the notes they point at.
"""

from __future__ import annotations

import html.entities
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from defusedxml.ElementTree import DefusedXMLParser, ParseError
from defusedxml.ElementTree import fromstring as _defused_fromstring

Event = tuple[str, str, dict[str, str]]  # ("start" | "end", tag, attributes) or ("text", text, {})


class MalformedMarkup(ValueError):
    """The XHTML is not well-formed XML."""


@dataclass(frozen=True)
class Block:
    text: str
    heading: int = 0  # 1-6 for <h1>…<h6>, 0 for a paragraph


BLOCK_TAGS = frozenset(
    "p div section article header footer main blockquote pre li dd dt figcaption caption td th"
    " tr table ul ol dl h1 h2 h3 h4 h5 h6 hr body".split()
)
SKIPPED_TAGS = frozenset("head script style nav template svg math noscript".split())
# EPUB 3 structural semantics a listener does not hear (epub:type on a section or the body)
NOT_READ = frozenset(
    "noteref footnote footnotes endnote endnotes rearnote rearnotes note toc landmarks"
    " page-list pagebreak cover copyright-page index".split()
)
_MARKER = re.compile(r"[\[\(]?(\d{1,3}|[*†‡§¶a-z])[\]\)]?")
VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


# --- the two parsers -------------------------------------------------------------------------


def _local(name: str) -> str:
    """``{namespace}type`` → ``type``; the epub: namespace keeps its prefix."""
    if name.startswith("{"):
        namespace, _, local = name[1:].partition("}")
        return f"epub:{local}" if namespace == "http://www.idpf.org/2007/ops" else local
    return name


def parse_xhtml(data: bytes) -> Element:
    """A strict XML parse that accepts HTML's named entities (``&nbsp;``) and no entity
    declarations of the document's own (defusedxml: no billion laughs)."""
    parser = DefusedXMLParser()
    parser.entity.update({name: chr(code) for name, code in html.entities.name2codepoint.items()})
    try:
        parser.feed(data)
        return parser.close()
    except ParseError as exc:
        raise MalformedMarkup(f"not well-formed XHTML ({exc})") from None


def parse_xml(data: bytes) -> Element:
    """A package or navigation file (defusedxml: no entity declarations)."""
    try:
        return _defused_fromstring(data)
    except ParseError as exc:
        raise MalformedMarkup(f"not well-formed XML ({exc})") from None


def xml_events(root: Element) -> Iterator[Event]:
    attrs = {_local(k): v for k, v in root.attrib.items()}
    yield ("start", _local(str(root.tag)).lower(), attrs)
    if root.text:
        yield ("text", root.text, {})
    for child in root:
        if isinstance(child.tag, str):  # not a comment or processing instruction
            yield from xml_events(child)
        if child.tail:
            yield ("text", child.tail, {})
    yield ("end", _local(str(root.tag)).lower(), {})


class _HtmlEvents(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[Event] = []
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(("start", tag, {k: v or "" for k, v in attrs}))
        if tag in VOID:
            self.events.append(("end", tag, {}))
        else:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.open:
            return  # a stray end tag
        while self.open:  # close what was left open inside it
            top = self.open.pop()
            self.events.append(("end", top, {}))
            if top == tag:
                break

    def handle_data(self, data: str) -> None:
        self.events.append(("text", data, {}))


def html_events(text: str) -> list[Event]:
    parser = _HtmlEvents()
    parser.feed(text)
    parser.close()
    return parser.events + [("end", tag, {}) for tag in reversed(parser.open)]


XHTML = "{http://www.w3.org/1999/xhtml}"
OPS = "{http://www.idpf.org/2007/ops}"  # epub:type's namespace


def parse_html_tree(text: str) -> Element:
    """What HTML's lenient parser makes of a page, as the tree :func:`parse_xhtml` would have
    given were it well-formed: XHTML's namespace on the elements, ``epub:type`` in OPS's."""
    root = Element(XHTML + "html")
    stack = [root]
    for kind, tag, attrs in html_events(text):
        if tag == "html" and kind != "text":
            continue  # the root is made above
        if kind == "start":
            named = {(OPS + k[5:] if k.startswith("epub:") else k): v for k, v in attrs.items()}
            element = SubElement(stack[-1], XHTML + tag, named)
            stack.append(element)
        elif kind == "end":
            stack.pop()
        elif len(stack[-1]):
            stack[-1][-1].tail = (stack[-1][-1].tail or "") + tag
        else:
            stack[-1].text = (stack[-1].text or "") + tag
    return root


# --- the walker --------------------------------------------------------------------------------


def _types(attrs: dict[str, str]) -> set[str]:
    return set(attrs.get("epub:type", "").split()) | set(attrs.get("role", "").split())


def _is_marker(events: list[Event], i: int) -> bool:
    """A footnote marker: ``<a epub:type="noteref">``, or ``<sup>`` around a short link."""
    _, tag, attrs = events[i]
    if tag == "a" and ("noteref" in _types(attrs) or "doc-noteref" in _types(attrs)):
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


def _note_targets(events: list[Event]) -> set[str]:
    """Ids that footnote markers point at: the notes themselves are not read either."""
    targets = set()
    for i, (kind, tag, attrs) in enumerate(events):
        if kind == "start" and _is_marker(events, i):
            link = attrs if tag == "a" else events[i + 1][2]
            targets.add(link.get("href", "").partition("#")[2])
    return targets - {""}


def _skip(events: list[Event], i: int, targets: set[str]) -> bool:
    _, tag, attrs = events[i]
    return (
        tag in SKIPPED_TAGS
        or bool(_types(attrs) & NOT_READ)
        or attrs.get("id", "") in targets
        or _is_marker(events, i)
        or (tag == "aside" and bool(_types(attrs) & {"footnote", "endnote", "note"}))
    )


def _track(skipping: list[str], kind: str, tag: str) -> None:
    """Follow the nesting of the skipped subtree's tag until it closes."""
    if kind != "text" and tag == skipping[0]:
        skipping.append(tag) if kind == "start" else skipping.pop()


def blocks(events: list[Event]) -> list[Block]:
    """Headings and paragraphs in reading order, whitespace collapsed, empty ones dropped."""
    targets = _note_targets(events)
    out: list[Block] = []
    text: list[str] = []
    heading = 0
    skipping: list[str] = []  # the tag whose subtree is skipped, and nested ones of that tag

    def flush() -> None:
        nonlocal heading
        joined = " ".join("".join(text).split())
        if joined:
            out.append(Block(joined, heading))
        text.clear()
        heading = 0

    for i, (kind, tag, _attrs) in enumerate(events):
        if skipping:
            _track(skipping, kind, tag)
        elif kind == "text":
            text.append(tag)
        elif kind == "start" and _skip(events, i, targets):
            skipping.append(tag)
        elif tag == "br":
            text.append(" ")
        elif tag in BLOCK_TAGS:
            flush()
            if kind == "start" and re.fullmatch(r"h[1-6]", tag):
                heading = int(tag[1])
    flush()
    return out


def title_of(events: list[Event]) -> str | None:
    """The text of a page's ``<title>``."""
    inside, parts = False, []
    for kind, tag, _ in events:
        if tag == "title" and kind != "text":
            inside = kind == "start"
            if not inside:
                break
        elif inside and kind == "text":
            parts.append(tag)
    title = " ".join("".join(parts).split())
    return title or None


def attributes(element: Element) -> dict[str, Any]:
    return {_local(k): v for k, v in element.attrib.items()}
