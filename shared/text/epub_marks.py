"""The sentences Lyre spoke, found in a book's own pages and given ids: what a read-along EPUB's
overlays point at (``shared.text.read_along``).

A page's text is read as ``shared.text.reading`` reads it (not its code, notes or markers), and
the spoken sentences are looked for in that text in order, by their letters and digits alone
(case, punctuation, spacing and Unicode's compatibility forms aside). A sentence found is
wrapped in a ``<span id>``; where it starts or ends inside an inline element (``<em>``,
``<a>``), that element is closed before the span and opened again inside it, as an editor
splits a selection. A sentence that cannot be wrapped — a table's row, read with its cells
joined — gets the id of the element around it instead.
"""

from __future__ import annotations

import html.entities
import re
import unicodedata
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from lxml import etree

from shared.text.markup import OPS, XHTML, Event, attributes, parse_html_tree
from shared.text.reading import BLOCK_TAGS, not_read, note_targets

WINDOW = 5000  # letters past the last sentence found within which the next is looked for
# Elements a span cannot be put around or inside of: the blocks, and a table's parts
BLOCKY = BLOCK_TAGS | frozenset("tr td th thead tbody tfoot colgroup col html head".split())
_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {b"amp", b"lt", b"gt", b"quot", b"apos"}


def parse_page(data: bytes) -> etree._Element:
    """A page as lxml's tree, HTML's named entities as characters; a page that is not
    well-formed is read as HTML (as the reading of the book did) and given XHTML's namespace."""
    data = _ENTITY.sub(_numeric, data)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        return etree.fromstring(data, parser)
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


def local(element: etree._Element) -> str:
    return etree.QName(element).localname.lower() if isinstance(element.tag, str) else ""


@dataclass(eq=False)
class _Text:
    """One of a page's texts that is read: an element's ``text``, or its ``tail``."""

    element: etree._Element
    tail: bool

    @property
    def value(self) -> str:
        return (self.element.tail if self.tail else self.element.text) or ""

    @property
    def where(self) -> tuple[int, bool]:
        """Which text it is, whichever ``_Text`` names it."""
        return id(self.element), self.tail

    @property
    def owner(self) -> etree._Element:
        return self.element.getparent() if self.tail else self.element


def read_texts(root: etree._Element) -> list[_Text]:
    """The page's texts a listener hears, in order (``shared.text.reading``'s rules)."""
    events: list[Event] = []
    refs: list[_Text | None] = []

    def walk(element: etree._Element) -> None:
        events.append(("start", local(element), attributes(element)))
        refs.append(None)
        if element.text:
            events.append(("text", element.text, {}))
            refs.append(_Text(element, False))
        for child in element:
            if isinstance(child.tag, str):
                walk(child)
            if child.tail:
                events.append(("text", child.tail, {}))
                refs.append(_Text(child, True))
        events.append(("end", local(element), {}))
        refs.append(None)

    walk(root)
    targets, skipping, out = note_targets(events), list[str](), []
    for i, (kind, tag, _) in enumerate(events):
        if skipping:
            if kind != "text" and tag == skipping[0]:
                skipping.append(tag) if kind == "start" else skipping.pop()
        elif kind == "text":
            out.append(refs[i])
        elif kind == "start" and (tag == "pre" or not_read(events, i, targets)):
            skipping.append(tag)
    return [ref for ref in out if ref is not None]


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
    """The book's read letters, each with the text and offset it came from."""

    letters: list[str] = field(default_factory=list)
    where: list[tuple[_Text, int, str]] = field(default_factory=list)  # text, offset, page

    def add(self, page: str, texts: list[_Text]) -> None:
        for text in texts:
            for offset, ch in enumerate(text.value):
                for letter in key(ch):
                    self.letters.append(letter)
                    self.where.append((text, offset, page))


def mark_sentences(pages: dict[str, etree._Element], sentences: list[str]) -> Found:
    """Find ``sentences`` (in reading order) in ``pages`` (path → root, in reading order) and
    give each found an id."""
    stream = _Stream()
    for path, root in pages.items():
        stream.add(path, read_texts(root))
    letters, cursor = "".join(stream.letters), 0
    ranges: list[tuple[int, _Text, int, _Text, int]] = []  # sentence, start, end (exclusive)
    for n, sentence in enumerate(sentences):
        wanted = key(sentence)
        at = letters.find(wanted, cursor, cursor + WINDOW + len(wanted)) if wanted else -1
        if at < 0:
            continue
        first, start, _ = stream.where[at]
        last, end, _ = stream.where[at + len(wanted) - 1]
        ranges.append((n, first, _widen_back(first.value, start), last, _widen(last.value, end)))
        cursor = at + len(wanted)
    found = Found([None] * len(sentences))
    page_of = {id(text): page for text, _, page in stream.where}
    by_block: dict[etree._Element, list[tuple[int, _Text, int, _Text, int]]] = {}
    for item in ranges:
        by_block.setdefault(_block(item[1].owner, item[3].owner), []).append(item)
    used: dict[str, set[str]] = {p: set(root.xpath("//@id")) for p, root in pages.items()}
    for block, items in by_block.items():
        page = page_of[id(items[0][1])]
        for n, name in _wrap(block, items, used[page]).items():
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


def _block(a: etree._Element, b: etree._Element) -> etree._Element:
    """The innermost block around both."""
    above = set(a.iterancestors()) | {a}
    common = b if b in above else next(e for e in b.iterancestors() if e in above)
    while local(common) not in BLOCKY and common.getparent() is not None:
        common = common.getparent()
    return common


def _new_id(used: set[str], n: int) -> str:
    name = f"lyre-s{n + 1}"
    while name in used:
        name += "x"
    used.add(name)
    return name


def _wrap(block: etree._Element, items: list, used: set[str]) -> dict[int, str]:
    """Put each sentence of ``block`` in a span of its own (or give the block an id)."""
    tokens = _flatten(block)
    at = {value.where: i for i, (kind, value) in enumerate(tokens) if kind == "text"}
    wholes = [i for i, (kind, _) in enumerate(tokens) if kind == "whole"]
    cuts: dict[tuple[int, bool], list[tuple[int, str, int]]] = {}  # text → offset, what, sentence
    names: dict[int, str] = {}
    for n, first, start, last, end in items:
        a, b = at.get(first.where), at.get(last.where)
        if a is None or b is None or any(a < i < b for i in wholes):
            # it runs across a block inside this one (a table's row): the block's id
            names[n] = block.get("id") or _new_id(used, n)
            block.set("id", names[n])
            continue
        names[n] = _new_id(used, n)
        cuts.setdefault(first.where, []).append((start, "open", n))
        cuts.setdefault(last.where, []).append((end, "close", n))
    if cuts:
        _rebuild(block, tokens, cuts, names)
    return names


def _flatten(block: etree._Element) -> list[tuple[str, object]]:
    """``block``'s content as open / close of its inline elements, texts, and whole blocks."""
    tokens: list[tuple[str, object]] = []

    def walk(element: etree._Element) -> None:
        if element.text:
            tokens.append(("text", _Text(element, False)))
        for child in element:
            if isinstance(child.tag, str) and local(child) not in BLOCKY:
                tokens.append(("open", child))
                walk(child)
                tokens.append(("close", child))
            else:
                tokens.append(("whole", child))
            if child.tail:
                tokens.append(("text", _Text(child, True)))

    walk(block)
    return tokens


def _rebuild(block, tokens, cuts, names) -> None:
    """Write ``block``'s content again with the sentences' spans, splitting inline elements
    where a span starts or ends inside them (the copies without the element's id)."""
    texts = {text.where: text.value for kind, text in tokens if kind == "text"}
    for child in list(block):
        block.remove(child)
    block.text = None
    stack: list[etree._Element] = [block]  # where new content goes
    inline: list[etree._Element] = []  # the source's inline elements open here
    span_depth = [0]  # how deep the open span is in ``stack`` (0: none)

    def put(text: str) -> None:
        parent = stack[-1]
        if len(parent):
            parent[-1].tail = (parent[-1].tail or "") + text
        else:
            parent.text = (parent.text or "") + text

    def copy(element: etree._Element, first: bool) -> None:
        attrs = {k: v for k, v in element.attrib.items() if first or k != "id"}
        stack.append(etree.SubElement(stack[-1], element.tag, attrs, nsmap=None))

    def reopen(at_span: bool, name: str | None) -> None:
        del stack[1:]
        if name is not None:
            stack.append(etree.SubElement(block, f"{XHTML}span", {"id": name}))
        span_depth[0] = 1 if name is not None else 0
        for element in inline:
            copy(element, False)

    for kind, value in tokens:
        if kind == "open":
            inline.append(value)  # type: ignore[arg-type]
            copy(value, True)  # type: ignore[arg-type]
        elif kind == "close":
            inline.pop()
            stack.pop()
        elif kind == "whole":
            value.tail = None  # type: ignore[attr-defined]
            stack[-1].append(value)  # type: ignore[arg-type]
        else:
            text = texts[value.where]  # type: ignore[attr-defined]
            at = 0
            for offset, what, n in sorted(cuts.get(value.where, []), key=lambda c: c[0]):  # type: ignore[attr-defined]
                put(text[at:offset])
                at = offset
                reopen(what == "open", names[n] if what == "open" else None)
            put(text[at:])
