"""A book's table of contents, as the book nests it: the EPUB 3 navigation document's ``toc``,
else the NCX (EPUB 2), as entries with their depth; which entries start chapters; and the pages
the book marks as not read (landmarks, the EPUB 2 guide, ``linear="no"``).

Every entry starts a chapter, nested ones too, in the table's order (a reading system offers
each as a place to go; a part and the chapters in it, a chapter and its sections), at the top
of its page or at the anchor it names; an entry naming the place another does adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from shared.text.epub_archive import Archive, Item, fragment, resolve
from shared.text.markup import XHTML, attributes

OPF = "{http://www.idpf.org/2007/opf}"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
NOT_READ_LANDMARKS = {"cover", "toc", "copyright-page", "landmarks", "index", "titlepage"}


@dataclass(frozen=True)
class Entry:
    title: str
    path: str  # the page, in the archive
    fragment: str  # where on the page it starts ("": at the top)
    depth: int  # 0: top level


@dataclass
class Contents:
    entries: list[Entry]  # in the table's order
    skipped: set[str]  # pages not read

    def chapters(self) -> list[Entry]:
        """The entries that start chapters: each place the table names, once."""
        places: dict[tuple[str, str], Entry] = {}
        for entry in self.entries:
            places.setdefault((entry.path, entry.fragment), entry)
        return list(places.values())


def contents(
    archive: Archive, package: Element, package_path: str, manifest: dict[str, Item]
) -> Contents:
    """The table of contents and the pages not read (``manifest``: the items by id)."""
    spine = package.find(f"{OPF}spine")
    skipped = {
        manifest[ref.get("idref", "")].path
        for ref in (spine if spine is not None else [])
        if ref.get("linear") == "no" and ref.get("idref") in manifest
    }
    for reference in package.iter(f"{OPF}reference"):  # the EPUB 2 guide
        if reference.get("type") in NOT_READ_LANDMARKS:
            skipped.add(resolve(package_path, reference.get("href", "")))
    nav = next((item.path for item in manifest.values() if "nav" in item.properties), None)
    entries: list[Entry] = []
    if nav is not None and nav in archive.names:
        skipped.add(nav)
        entries, landmarks = _nav(archive, nav)
        skipped |= landmarks
    ncx = manifest.get(spine.get("toc", "") if spine is not None else "")
    if not entries and ncx is not None and ncx.path in archive.names:
        root = archive.xml(ncx.path).find(f"{NCX}navMap")
        entries = _ncx(ncx.path, root, 0) if root is not None else []
    return Contents(entries, skipped)


def _ncx(path: str, parent: Element, depth: int, above: Entry | None = None) -> list[Entry]:
    """The navPoints under ``parent``, each followed by those nested in it; a point that
    repeats its parent's target (Sphinx's NCX) is its parent, not a child."""
    entries = []
    for point in parent.findall(f"{NCX}navPoint"):
        content, label = point.find(f"{NCX}content"), point.find(f"{NCX}navLabel")
        title = " ".join("".join(label.itertext()).split()) if label is not None else ""
        src = content.get("src", "") if content is not None else ""
        entry = Entry(title, resolve(path, src), fragment(src), depth)
        repeats = above is not None and (entry.path, entry.fragment) == (above.path, above.fragment)
        if not title or not src or repeats:
            entries += _ncx(path, point, depth, above)
            continue
        entries.append(entry)
        entries += _ncx(path, point, depth + 1, entry)
    return entries


def _nav(archive: Archive, path: str) -> tuple[list[Entry], set[str]]:
    """The ``toc`` nav's entries, and the pages its ``landmarks`` nav marks as not read."""
    entries: list[Entry] = []
    landmarks = set()
    for nav in archive.page(path).iter(f"{XHTML}nav"):
        kind = set(attributes(nav).get("epub:type", "").split())
        if "toc" in kind:
            entries += _nav_list(path, nav, 0)
        elif "landmarks" in kind:
            for link in nav.iter(f"{XHTML}a"):
                if set(attributes(link).get("epub:type", "").split()) & NOT_READ_LANDMARKS:
                    landmarks.add(resolve(path, link.get("href", "")))
    return entries, landmarks


def _nav_list(path: str, element: Element, depth: int) -> list[Entry]:
    """The entries of the lists in ``element``: each ``li``'s link, then its nested list."""
    entries = []
    for child in element:
        if child.tag == f"{XHTML}li":
            link = child.find(f"{XHTML}a")
            if link is not None and link.get("href"):
                title = " ".join("".join(link.itertext()).split())
                href = link.get("href", "")
                entries.append(Entry(title, resolve(path, href), fragment(href), depth))
            entries += _nav_list(path, child, depth + 1)
        elif child.tag != f"{XHTML}a":
            entries += _nav_list(path, child, depth)
    return entries
