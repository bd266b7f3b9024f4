"""A sentence found in a page wrapped in a ``<span id>`` of its own (``shared.text.epub_marks``
finds it): where it starts or ends inside an inline element (``<em>``, ``<a>``), that element
is closed before the span and opened again inside it, as an editor splits a selection; one that
runs across a block inside the one around it (a table's row, read with its cells joined) gets
the id of that block instead."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from shared.text.markup import XHTML
from shared.text.reading import BLOCK_TAGS

# Elements a span cannot be put around or inside of: the blocks, and a table's parts
BLOCKY = BLOCK_TAGS | frozenset("tr td th thead tbody tfoot colgroup col html head".split())
# A sentence found: its number; its first text and the offset in it; its last text and the offset
# past its end
Range = tuple[int, "Text", int, "Text", int]


def local(element: etree._Element) -> str:
    return etree.QName(element).localname.lower() if isinstance(element.tag, str) else ""


@dataclass(eq=False)
class Text:
    """One of a page's texts that is read: an element's ``text``, or its ``tail``; or an
    image's ``alt`` (a figure without a caption is read by it)."""

    element: etree._Element
    tail: bool
    alt: bool = False

    @property
    def value(self) -> str:
        if self.alt:
            return self.element.get("alt") or ""
        return (self.element.tail if self.tail else self.element.text) or ""

    @property
    def where(self) -> tuple[int, bool, bool]:
        """Which text it is, whichever ``Text`` names it."""
        return id(self.element), self.tail, self.alt

    @property
    def owner(self) -> etree._Element:
        return self.element.getparent() if self.tail else self.element


def block_around(a: etree._Element, b: etree._Element) -> etree._Element:
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


def wrap(block: etree._Element, items: list[Range], used: set[str]) -> dict[int, str]:
    """Put each sentence of ``block`` in a span of its own (or give the block an id)."""
    tokens = _flatten(block)
    at = {value.where: i for i, (kind, value) in enumerate(tokens) if kind == "text"}
    wholes = [i for i, (kind, _) in enumerate(tokens) if kind == "whole"]
    cuts: dict[tuple[int, bool, bool], list[tuple[int, str, int]]] = {}  # offset, what, sentence
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


def _flatten(block: etree._Element) -> list[tuple[str, Any]]:
    """``block``'s content as open / close of its inline elements, texts, and whole blocks."""
    tokens: list[tuple[str, Any]] = []

    def walk(element: etree._Element) -> None:
        if element.text:
            tokens.append(("text", Text(element, False)))
        for child in element:
            if isinstance(child.tag, str) and local(child) not in BLOCKY:
                tokens.append(("open", child))
                walk(child)
                tokens.append(("close", child))
            else:
                tokens.append(("whole", child))
            if child.tail:
                tokens.append(("text", Text(child, True)))

    walk(block)
    return tokens


def _rebuild(block: etree._Element, tokens: list, cuts: dict, names: dict[int, str]) -> None:
    """Write ``block``'s content again with the sentences' spans, splitting inline elements
    where a span starts or ends inside them (the copies without the element's id)."""
    texts = {text.where: text.value for kind, text in tokens if kind == "text"}
    for child in list(block):
        block.remove(child)
    block.text = None
    out = _Out(block)
    for kind, value in tokens:
        if kind == "open":
            out.open(value)
        elif kind == "close":
            out.close()
        elif kind == "whole":
            value.tail = None  # its tail is a text of its own
            out.stack[-1].append(value)
        else:
            text, at = texts[value.where], 0
            for offset, what, n in sorted(cuts.get(value.where, []), key=lambda c: c[0]):
                out.put(text[at:offset])
                at = offset
                out.cut(names[n] if what == "open" else None)
            out.put(text[at:])


class _Out:
    """Where a block's content is written again: the elements open, innermost last."""

    def __init__(self, block: etree._Element) -> None:
        self.block = block
        self.stack = [block]  # the block, the open span if any, copies of the open inlines
        self.inline: list[etree._Element] = []  # the source's inline elements open here

    def put(self, text: str) -> None:
        parent = self.stack[-1]
        if len(parent):
            parent[-1].tail = (parent[-1].tail or "") + text
        else:
            parent.text = (parent.text or "") + text

    def open(self, element: etree._Element) -> None:
        self.inline.append(element)
        self._copy(element, first=True)

    def close(self) -> None:
        self.inline.pop()
        self.stack.pop()

    def cut(self, span: str | None) -> None:
        """Close everything open in the block; open the span ``span`` (None: no span), and
        inside it the inline elements that were open."""
        del self.stack[1:]
        if span is not None:
            self.stack.append(etree.SubElement(self.block, f"{XHTML}span", {"id": span}))
        for element in self.inline:
            self._copy(element, first=False)

    def _copy(self, element: etree._Element, first: bool) -> None:
        attrs = {k: v for k, v in element.attrib.items() if first or k != "id"}
        self.stack.append(etree.SubElement(self.stack[-1], element.tag, attrs))
