"""A book's pages, in the spine's order, read into its chapters (``shared.text.epub_toc`` says
which entries start one). A chapter starts where its entry points, at the top of a page or at
an anchor inside one (several chapters in one file, as Calibre and others write them); a page
no entry starts continues the chapter before it. Not read, besides what the book marks:

- a title page: a page before the first chapter, titled the book's title by the table of
  contents or by its first heading, with a few words more at most (the author, a date, an
  identifier); the title and the author are the book's metadata;
- a page that says nothing but a heading and that no entry names (an empty index).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from shared.text.epub_archive import Archive, BookRefused, Item
from shared.text.epub_toc import Contents, Entry
from shared.text.markup import xml_events
from shared.text.reading import Block, blocks

TITLE_PAGE_WORDS = 40  # at most, with its title


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


def sections(
    archive: Archive,
    manifest: dict[str, Item],
    spine: Element,
    contents: Contents,
    book_title: str | None,
    left_out: Counter[str],
) -> list[Section]:
    starts: dict[str, list[Entry]] = {}
    for entry in contents.chapters():
        starts.setdefault(entry.path, []).append(entry)
    named = {entry.path: entry.title for entry in contents.entries}
    out: list[Section] = []
    for path in read_pages(archive, manifest, spine, contents.skipped):
        page = blocks(list(xml_events(archive.page(path))), left_out)
        title_page = not out and _title_page(page, named.get(path), book_title)
        if title_page or (path not in named and _heading_alone(page)):
            continue
        for title, part in _split(page, starts.get(path, [])):
            if title is not None:
                out.append(Section(title))
            elif not out and part:  # before the first entry: titled by its own heading
                out.append(Section(part[0].text if part[0].heading else ""))
            if out:
                out[-1].blocks += part
    return [section for section in out if section.blocks]


def read_pages(
    archive: Archive, manifest: dict[str, Item], spine: Element, skipped: set[str]
) -> list[str]:
    """The spine's pages to read, in order."""
    pages = []
    for ref in spine:
        item = manifest.get(ref.get("idref", ""))
        if item is None:
            raise BookRefused(f"the spine names {ref.get('idref')!r}, which the manifest lacks")
        if item.path not in archive.names:
            raise BookRefused(f"the spine names {item.path}, which is not in the book")
        if item.path not in skipped and "html" in item.media_type:
            pages.append(item.path)
    return pages


def _heading_alone(page: list[Block]) -> bool:
    return len(page) == 1 and bool(page[0].heading)


def _title_page(page: list[Block], label: str | None, book_title: str | None) -> bool:
    """Titled the book's title (by its table of contents entry, or its first heading), with
    a few words more at most."""
    if not page or not book_title:
        return False
    heading = page[0].text if page[0].heading else ""
    titled = _same(label or "", book_title) or _same(heading, book_title)
    return titled and sum(len(block.text.split()) for block in page) <= TITLE_PAGE_WORDS


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def _split(page: list[Block], starts: Sequence[Entry]) -> list[tuple[str | None, list[Block]]]:
    """The page cut where each of its chapters starts: what comes before the first (the
    chapter before this page's), then each chapter's part, titled."""
    cuts = sorted((_at(page, entry.fragment), entry.title) for entry in starts)
    pieces: list[tuple[str | None, list[Block]]] = []
    if not cuts or cuts[0][0] > 0:
        pieces.append((None, page[: cuts[0][0] if cuts else len(page)]))
    for n, (at, title) in enumerate(cuts):
        end = cuts[n + 1][0] if n + 1 < len(cuts) else len(page)
        pieces.append((title, page[at:end]))
    return pieces


def _at(page: list[Block], anchor: str) -> int:
    """The block an anchor starts at; the top of the page for none, or one not found."""
    if anchor:
        for index, block in enumerate(page):
            if anchor in block.anchors:
                return index
    return 0
