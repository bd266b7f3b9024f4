"""The sentences Lyre spoke, found in a book's own pages and given ids: what a read-along EPUB's
overlays point at (``shared.text.read_along``).

A page's text is read as ``shared.text.reading`` reads it (not its code, notes or markers), and
the spoken sentences are looked for in that text in order, by their letters and digits alone
(case, punctuation, spacing and Unicode's compatibility forms aside); each found is wrapped in a
``<span id>`` (``shared.text.epub_spans``).
"""

from __future__ import annotations

import html.entities
import re
import unicodedata
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from lxml import etree

from shared.text.epub_spans import Range, Text, block_around, local, wrap
from shared.text.markup import OPS, XHTML, Event, attributes, parse_html_tree
from shared.text.reading import BLOCK_TAGS, not_read, note_targets

WINDOW = 5000  # letters past the last sentence found within which the next is looked for
_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {b"amp", b"lt", b"gt", b"quot", b"apos"}


def parse_page(data: bytes) -> etree._Element:
    """A page as lxml's tree, HTML's named entities as characters; a page that is not
    well-formed is read as HTML (as the reading of the book did) and given XHTML's namespace."""
    data = _ENTITY.sub(_numeric, data)
    try:
        return etree.fromstring(data, safe_parser())
    except etree.XMLSyntaxError:
        return _paragraphs_closed(_copied(parse_html_tree(data.decode("utf-8", "replace")), None))


def _copied(element: Element, parent: etree._Element | None) -> etree._Element:
    """ElementTree's tree as lxml's, XHTML the default namespace."""
    attrs = dict(element.attrib)
    if parent is None:
        made = etree.Element(element.tag, attrs, nsmap={None: XHTML[1:-1], "epub": OPS[1:-1]})
    else:
        made = etree.SubElement(parent, element.tag, attrs)
    made.text, made.tail = element.text, element.tail
    for child in element:
        _copied(child, made)
    return made


def safe_parser() -> etree.XMLParser:
    """A parser that expands no entity and loads no DTD, here or from the network; a new one
    for each document, so that no parser is ever used by two threads at once."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _paragraphs_closed(root: etree._Element) -> etree._Element:
    """A ``<p>`` ends where a block starts inside it, as HTML's parser ends it (an unclosed
    ``<p>`` before the next): the block and what follows it move out, after the paragraph."""
    for paragraph in list(root.iter(f"{XHTML}p")):
        block = next((c for c in paragraph if local(c) in BLOCK_TAGS), None)
        if block is None:
            continue
        moved = [block, *block.itersiblings()]
        for element in reversed(moved):
            paragraph.addnext(element)  # its tail goes with it
    return root


def _numeric(match: re.Match[bytes]) -> bytes:
    name = match.group(1)
    code = html.entities.name2codepoint.get(name.decode())
    return match.group(0) if name in _XML_ENTITIES or code is None else b"&#%d;" % code


def read_texts(root: etree._Element) -> list[Text]:
    """The page's texts a listener hears, in order (``shared.text.reading``'s rules)."""
    events, refs = _events(root)
    targets, skipping, out = note_targets(events), list[str](), []
    for i, (kind, tag, _) in enumerate(events):
        if skipping:
            if kind in ("start", "end") and tag == skipping[0]:
                skipping.append(tag) if kind == "start" else skipping.pop()
        elif kind in ("text", "alt"):
            out.append(refs[i])
        elif kind == "start" and (tag == "pre" or not_read(events, i, targets)):
            skipping.append(tag)
    return [ref for ref in out if ref is not None]


def _events(root: etree._Element) -> tuple[list[Event], list[Text | None]]:
    """The page as ``shared.text.markup``'s events, with the text each text event is; and an
    ``alt`` event after an image's start, for its alternative text."""
    events: list[Event] = []
    refs: list[Text | None] = []

    def walk(element: etree._Element) -> None:
        events.append(("start", local(element), attributes(element)))
        refs.append(None)
        if local(element) == "img" and element.get("alt", "").strip():  # a figure's words
            events.append(("alt", element.get("alt", ""), {}))
            refs.append(Text(element, False, alt=True))
        if element.text:
            events.append(("text", element.text, {}))
            refs.append(Text(element, False))
        for child in element:
            if isinstance(child.tag, str):
                walk(child)
            if child.tail:
                events.append(("text", child.tail, {}))
                refs.append(Text(child, True))
        events.append(("end", local(element), {}))
        refs.append(None)

    walk(root)
    return events, refs


def key(text: str) -> str:
    """What a sentence is matched by: its letters and digits, case folded."""
    return "".join(ch for ch in unicodedata.normalize("NFKC", text).casefold() if ch.isalnum())


@dataclass
class Found:
    """Where each sentence was found: ``places[i]`` is (page, id) or None."""

    places: list[tuple[str, str] | None]
    pages: dict[str, etree._Element] = field(default_factory=dict)  # the pages changed


@dataclass
class _Stream:
    """The book's read letters, each with the text and offset it came from, and each text's
    page."""

    letters: list[str] = field(default_factory=list)
    where: list[tuple[Text, int]] = field(default_factory=list)
    page_of: dict[int, str] = field(default_factory=dict)  # by the Text's id

    def add(self, page: str, texts: list[Text]) -> None:
        for text in texts:
            self.page_of[id(text)] = page
            for offset, ch in enumerate(text.value):
                for letter in key(ch):
                    self.letters.append(letter)
                    self.where.append((text, offset))


def mark_sentences(pages: dict[str, etree._Element], sentences: list[str]) -> Found:
    """Find ``sentences`` (in reading order) in ``pages`` (path → root, in reading order) and
    give each found an id."""
    stream = _Stream()
    for path, root in pages.items():
        stream.add(path, read_texts(root))
    letters, cursor = "".join(stream.letters), 0
    ranges: list[Range] = []
    for n, sentence in enumerate(sentences):
        wanted = key(sentence)
        at = letters.find(wanted, cursor, cursor + WINDOW + len(wanted)) if wanted else -1
        if at < 0:
            continue
        cursor = at + len(wanted)
        first, start = stream.where[at]
        last, end = stream.where[at + len(wanted) - 1]
        if stream.page_of[id(first)] != stream.page_of[id(last)]:
            continue  # a sentence cut by the end of a page: no one element holds it
        start = _widen_back(first.value, start)
        if ranges and ranges[-1][3].where == first.where:  # not into the sentence before
            start = max(start, ranges[-1][4])
        ranges.append((n, first, start, last, _widen(last.value, end)))
    found = Found([None] * len(sentences))
    by_block: dict[etree._Element, list[Range]] = {}
    for item in ranges:
        by_block.setdefault(block_around(item[1].owner, item[3].owner), []).append(item)
    used: dict[str, set[str]] = {p: set(root.xpath("//@id")) for p, root in pages.items()}
    for block, items in by_block.items():
        page = stream.page_of[id(items[0][1])]
        for n, name in wrap(block, items, used[page]).items():
            found.places[n] = (page, name)
        found.pages[page] = pages[page]
    return found


def _widen(text: str, end: int) -> int:
    """Past the sentence's last letter: its closing punctuation and quotes, up to a space."""
    end += 1
    while end < len(text) and not text[end].isspace() and not text[end].isalnum():
        end += 1
    return end


def _widen_back(text: str, start: int) -> int:
    while start > 0 and not text[start - 1].isspace() and not text[start - 1].isalnum():
        start -= 1
    return start
