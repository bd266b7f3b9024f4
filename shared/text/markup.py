"""(X)HTML parsed into one stream of events, by two parsers: an EPUB's XHTML (strict XML; a
page that is not well-formed is read by the lenient parser, as a reading system would) and a
web page's HTML (lenient), so that both read the same way (``shared.text.reading`` walks the
events into what a listener hears).
"""

from __future__ import annotations

import html.entities
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from defusedxml.ElementTree import DefusedXMLParser, ParseError
from defusedxml.ElementTree import fromstring as _defused_fromstring

Event = tuple[str, str, dict[str, str]]  # ("start" | "end", tag, attributes) or ("text", text, {})


VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


class MalformedMarkup(ValueError):
    """The XHTML is not well-formed XML."""


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
