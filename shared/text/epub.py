"""EPUB 2 and 3 to sections a listener hears, with the book's metadata and cover.

Reading order is the spine's; a section's title is its table-of-contents entry (the EPUB 3
navigation document, else the NCX). Pages the book marks as not read — the cover, the table of
contents, the copyright page (landmarks, the EPUB 2 guide, ``epub:type`` on the page, or
``linear="no"`` in the spine) — are skipped, and so are footnote markers and the notes they
point at (``shared.text.markup``). A spine page with no entry of its own continues the section
before it. What is refused, each with a reason: not a zip, more unpacked than the limit (a zip
bomb), content encrypted by DRM (font obfuscation is not DRM), no spine, a spine page missing
from the archive. A container whose ``mimetype`` is not first or not exact is read, as reading
systems read it; a page that is not well-formed XHTML is read as HTML, with a warning.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass, field
from io import BytesIO
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from shared.text.markup import (
    Block,
    MalformedMarkup,
    attributes,
    blocks,
    parse_html_tree,
    parse_xhtml,
    parse_xml,
    xml_events,
)

DC = "{http://purl.org/dc/elements/1.1/}"
OPF = "{http://www.idpf.org/2007/opf}"
NCX = "{http://www.daisy.org/z3986/2005/ncx/}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}
NOT_READ_LANDMARKS = {"cover", "toc", "copyright-page", "landmarks", "index"}
DEFAULT_MAX_UNPACKED = 256 * 2**20


class BookRefused(ValueError):
    """The book cannot be read."""


@dataclass(frozen=True)
class Cover:
    data: bytes
    media_type: str

    @property
    def extension(self) -> str:
        return {"image/png": "png", "image/gif": "gif", "image/webp": "webp"}.get(
            self.media_type, "jpg"
        )


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Book:
    sections: list[Section]
    title: str | None = None
    author: str | None = None
    language: str | None = None
    cover: Cover | None = None
    warnings: list[str] = field(default_factory=list)  # what was read otherwise than written


@dataclass(frozen=True)
class _Item:
    path: str
    media_type: str
    properties: frozenset[str]


def is_epub(data: bytes) -> bool:
    """A zip with an OCF container (``META-INF/container.xml``). The container should also
    start with a stored ``mimetype`` saying ``application/epub+zip``, byte for byte; readers
    open a book whose ``mimetype`` is elsewhere, compressed or ends in a newline, and so
    does Lyre."""
    if data[:4] != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            return "META-INF/container.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


class _Archive:
    """A zip read with a budget: the declared sizes can lie, so reads are counted too."""

    def __init__(self, data: bytes, max_unpacked: int) -> None:
        try:
            self.zip = zipfile.ZipFile(BytesIO(data))
        except zipfile.BadZipFile:
            raise BookRefused("not an EPUB: the file is not a zip archive") from None
        self.budget = max_unpacked
        declared = sum(info.file_size for info in self.zip.infolist())
        if declared > max_unpacked:
            raise BookRefused(self._bomb())
        self.names = set(self.zip.namelist())

    def _bomb(self) -> str:
        return f"the book unpacks to more than {self.budget // 2**20} MiB"

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise BookRefused(f"{name} is not in the book")
        try:
            with self.zip.open(name) as member:
                data = member.read(self.budget + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise BookRefused(f"{name} cannot be unpacked ({exc})") from None
        self.budget -= len(data)
        if self.budget < 0:
            raise BookRefused(self._bomb())
        return data

    def xml(self, name: str) -> Element:
        try:
            return parse_xml(self.read(name))
        except MalformedMarkup as exc:
            raise BookRefused(f"{name}: {exc}") from None


def _resolve(base: str, href: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(base), unquote(href.split("#")[0])))


def read_epub(data: bytes, max_unpacked: int = DEFAULT_MAX_UNPACKED) -> Book:
    archive = _Archive(data, max_unpacked)
    rootfile = archive.xml("META-INF/container.xml").find(f".//{CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise BookRefused("META-INF/container.xml names no package document")
    opf_path = str(rootfile.get("full-path"))
    package = archive.xml(opf_path)
    manifest = {
        str(item.get("id")): _Item(
            _resolve(opf_path, item.get("href", "")),
            item.get("media-type", ""),
            frozenset(item.get("properties", "").split()),
        )
        for item in package.iter(f"{OPF}item")
    }
    _refuse_drm(archive, manifest)
    spine = package.find(f"{OPF}spine")
    if spine is None or not len(spine):
        raise BookRefused("the book has no spine (no reading order)")
    warnings: list[str] = []
    toc, skipped = _navigation(archive, package, manifest, spine, opf_path, warnings)
    return Book(
        _sections(archive, manifest, spine, toc, skipped, warnings),
        _dc(package, "title"),
        _dc(package, "creator"),
        _dc(package, "language"),
        _cover(archive, package, manifest),
        warnings,
    )


def _dc(package: Element, name: str) -> str | None:
    element = package.find(f"{OPF}metadata/{DC}{name}")
    text = " ".join((element.text or "").split()) if element is not None else ""
    return text or None


def _refuse_drm(archive: _Archive, manifest: dict[str, _Item]) -> None:
    if "META-INF/encryption.xml" not in archive.names:
        return
    fonts = {item.path for item in manifest.values() if "font" in item.media_type}
    for data in archive.xml("META-INF/encryption.xml").iter(f"{XMLENC}EncryptedData"):
        method = data.find(f"{XMLENC}EncryptionMethod")
        algorithm = method.get("Algorithm", "") if method is not None else ""
        reference = data.find(f".//{XMLENC}CipherReference")
        uri = unquote(reference.get("URI", "")) if reference is not None else ""
        font = uri in fonts or uri.lower().endswith((".otf", ".ttf", ".woff", ".woff2"))
        if not (algorithm in FONT_OBFUSCATION and font):
            raise BookRefused(f"the book is encrypted (DRM): {uri or 'content'} cannot be read")


def _navigation(
    archive: _Archive,
    package: Element,
    manifest: dict[str, _Item],
    spine: Element,
    opf_path: str,
    warnings: list[str],
) -> tuple[dict[str, str], set[str]]:
    """Titles by page (the first entry naming it), and the pages marked as not read."""
    skipped = {
        manifest[ref.get("idref", "")].path
        for ref in spine
        if ref.get("linear") == "no" and ref.get("idref") in manifest
    }
    for reference in package.iter(f"{OPF}reference"):  # the EPUB 2 guide
        if reference.get("type") in NOT_READ_LANDMARKS:
            skipped.add(_resolve(opf_path, reference.get("href", "")))
    nav = next((item for item in manifest.values() if "nav" in item.properties), None)
    entries: list[tuple[str, str]] = []
    if nav is not None and nav.path in archive.names:
        skipped.add(nav.path)
        entries, landmarks = _nav_entries(archive, nav.path, warnings)
        skipped |= landmarks
    ncx = manifest.get(spine.get("toc", ""))
    if not entries and ncx is not None and ncx.path in archive.names:
        entries = _ncx_entries(archive, ncx.path)
    titles: dict[str, str] = {}
    for path, title in entries:
        titles.setdefault(path, title)
    return titles, skipped


def _ncx_entries(archive: _Archive, path: str) -> list[tuple[str, str]]:
    """(page, title) for every navPoint, nested ones after their parent."""
    entries = []
    for point in archive.xml(path).iter(f"{NCX}navPoint"):
        content, label = point.find(f"{NCX}content"), point.find(f"{NCX}navLabel")
        title = " ".join("".join(label.itertext()).split()) if label is not None else ""
        if content is not None and title:
            entries.append((_resolve(path, content.get("src", "")), title))
    return entries


def _nav_entries(
    archive: _Archive, path: str, warnings: list[str]
) -> tuple[list[tuple[str, str]], set[str]]:
    root = _page(archive, path, warnings)
    entries, landmarks = [], set()
    for nav in root.iter("{http://www.w3.org/1999/xhtml}nav"):
        kind = set(attributes(nav).get("epub:type", "").split())
        for link in nav.iter("{http://www.w3.org/1999/xhtml}a"):
            target = _resolve(path, link.get("href", ""))
            if "toc" in kind:
                entries.append((target, " ".join("".join(link.itertext()).split())))
            elif "landmarks" in kind:
                if set(attributes(link).get("epub:type", "").split()) & NOT_READ_LANDMARKS:
                    landmarks.add(target)
    return entries, landmarks


def _sections(
    archive: _Archive,
    manifest: dict[str, _Item],
    spine: Element,
    toc: dict[str, str],
    skipped: set[str],
    warnings: list[str],
) -> list[Section]:
    sections: list[Section] = []
    for ref in spine:
        item = manifest.get(ref.get("idref", ""))
        if item is None:
            raise BookRefused(f"the spine names {ref.get('idref')!r}, which the manifest lacks")
        if item.path not in archive.names:
            raise BookRefused(f"the spine names {item.path}, which is not in the book")
        if item.path in skipped or "html" not in item.media_type:
            continue
        page = blocks(list(xml_events(_page(archive, item.path, warnings))))
        if item.path in toc:
            sections.append(Section(toc[item.path]))
        elif not sections and page:  # before the first entry: titled by its own heading
            sections.append(Section(page[0].text if page[0].heading else ""))
        if sections:
            sections[-1].blocks += page
    return [section for section in sections if section.blocks]


def _page(archive: _Archive, path: str, warnings: list[str]) -> Element:
    """A content document as XHTML; one that is not well-formed XML is read as HTML is (as
    reading systems do), and the book's warnings say so."""
    data = archive.read(path)
    try:
        return parse_xhtml(data)
    except MalformedMarkup as exc:
        warnings.append(f"{path} is {exc}: read as HTML")
        return parse_html_tree(data.decode("utf-8", errors="replace"))


def _cover(archive: _Archive, package: Element, manifest: dict[str, _Item]) -> Cover | None:
    item = next((i for i in manifest.values() if "cover-image" in i.properties), None)
    if item is None:  # EPUB 2: <meta name="cover" content="item id">
        for meta in package.iter(f"{OPF}meta"):
            if meta.get("name") == "cover" and meta.get("content") in manifest:
                item = manifest[str(meta.get("content"))]
    if item is None or item.path not in archive.names or not item.media_type.startswith("image/"):
        return None
    return Cover(archive.read(item.path), item.media_type)
