"""Any input to one document: EPUB, SSML, HTML, Markdown or plain text, told apart by content.

A document is the text the chunker reads (Markdown: one ``# title`` per chapter) and what the
book says about itself (title, author, language, cover). For EPUB and HTML the chapters come
from the structure, so the chunker is told not to look for "Chapter …" lines in the text.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from shared.text.controls import Control
from shared.text.epub import Book, Cover, read_epub
from shared.text.epub import is_epub as _is_epub
from shared.text.epub_archive import DEFAULT_MAX_UNPACKED, BookRefused
from shared.text.epub_pages import Section
from shared.text.markup import html_events, title_of
from shared.text.reading import Block, blocks, left_out_warnings
from shared.text.ssml import is_ssml, read_ssml

Kind = Literal["epub", "ssml", "html", "markdown", "text"]
_HTML_START = re.compile(
    rb"\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.I | re.S
)
_MARKDOWN = re.compile(r"^(#{1,6} |\* |- |\d+\. |> )|\*\*|\]\(", re.M)


@dataclass(frozen=True)
class Document:
    kind: Kind
    text: str  # what the chunker reads
    structured: bool  # chapters are the "# " headings only
    title: str | None = None
    author: str | None = None
    language: str | None = None
    cover: Cover | None = None
    warnings: tuple[str, ...] = ()  # what was read otherwise than written (a malformed page)
    controls: tuple[Control, ...] = ()  # SSML's breaks, rates and marks, by their markers
    about: tuple[tuple[str, str], ...] = ()  # an EPUB's description and publisher


def read_document(
    data: bytes, max_unpacked: int = DEFAULT_MAX_UNPACKED, name: str | None = None
) -> Document:
    """Tell the input's kind by its content and read it; ``BookRefused`` says why not. The
    file's ``name`` only sharpens a message: an ``.epub`` that is not a zip is told so."""
    if data[:4] == b"PK\x03\x04":
        if _is_epub(data):
            return from_book("epub", read_epub(data, max_unpacked))
        if not zipfile.is_zipfile(io.BytesIO(data)):
            raise BookRefused("not an EPUB: the file is not a zip archive")
        raise BookRefused("a zip archive that is not an EPUB (no META-INF/container.xml)")
    if name and name.lower().endswith(".epub"):
        raise BookRefused("not an EPUB: the file is not a zip archive")
    if b"\0" in data:
        raise BookRefused("neither text nor an EPUB: binary data")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BookRefused("not UTF-8 text, nor an EPUB") from None
    if is_ssml(data):
        said, noted, controls = read_ssml(text)
        return Document("ssml", said, structured=True, warnings=noted, controls=controls)
    if _HTML_START.match(data):
        return read_html(text)
    kind: Kind = "markdown" if _MARKDOWN.search(text) else "text"
    return Document(kind, text, structured=False)


def read_html(text: str) -> Document:
    """Chapters at the top heading level that repeats; a lone ``<h1>`` above them is the
    title."""
    events = html_events(text)
    left_out = Counter[str]()
    page = blocks(events, left_out)
    levels = [b.heading for b in page if b.heading]
    title = title_of(events)
    level = min(levels, default=1)
    if levels.count(level) == 1 and any(h > level for h in levels):
        top = next(b for b in page if b.heading == level)
        title = title or top.text
        page = [b for b in page if b is not top]
        level = min(h for h in levels if h > level)
    sections: list[Section] = [Section("")]
    for block in page:
        if block.heading == level:
            sections.append(Section(block.text))
        else:
            sections[-1].blocks.append(block)
    book = Book(
        [s for s in sections if s.blocks or s.title],
        title=title,
        warnings=left_out_warnings(left_out),
    )
    return from_book("html", book)


def from_book(kind: Kind, book: Book) -> Document:
    """The book as Markdown: a ``# title`` per section (spoken, as a heading is), then its
    paragraphs. A first heading that repeats the title is not read twice."""
    parts = []
    for section in book.sections:
        body = list(section.blocks)
        if body and body[0].heading and _same(body[0].text, section.title):
            body = body[1:]
        if section.title:
            parts.append(f"# {_one_line(section.title)}")
        parts += [_paragraph(block) for block in body]
    return Document(
        kind,
        "\n\n".join(parts),
        structured=True,
        title=book.title,
        author=book.author,
        language=book.language,
        cover=book.cover,
        warnings=tuple(book.warnings),
        about=tuple(book.about.items()),
    )


# A heading's numbering, which a table of contents may write otherwise ("Chapter 1. Getting
# Started" for its entry "1. Getting Started" or "Getting Started")
_NUMBERING = re.compile(
    r"^(?:(?i:chapter|part|section|book)\s+)?(?:\d+(?:\.\d+)*|[IVXLCDM]+)\.?\s+"
)


def _same(a: str, b: str) -> bool:
    """The same title, numbered or not."""

    def key(s: str) -> str:
        return re.sub(r"\W+", " ", _NUMBERING.sub("", " ".join(s.split()))).strip().casefold()

    return key(a) == key(b)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _paragraph(block: Block) -> str:
    """A paragraph the chunker will not mistake for a heading (a line starting with ``#``)."""
    return _one_line(block.text).lstrip("#").strip()
