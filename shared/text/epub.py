"""EPUB 2 and 3 to the sections a listener hears, with the book's metadata and cover.

Reading order is the spine's, the chapters the table of contents' (``epub_toc``: the EPUB 3
navigation document, else the NCX, as the book nests it), each page read into them by
``epub_pages``, what is on a page by ``shared.text.reading``. Pages the book marks as not read
— the cover, the table of contents, the title page, the copyright page (landmarks, the EPUB 2
guide, ``epub:type`` on the page, or ``linear="no"`` in the spine) — are skipped. Refused,
each with a reason (``epub_archive``): not a zip, more unpacked than the limit (a zip bomb),
content encrypted by DRM (font obfuscation is not DRM), no package document, no spine, a spine
page missing from the archive. Read as reading systems read them: a container whose
``mimetype`` is not first or not exact, a page that is not well-formed XHTML (as HTML, with a
warning).
"""

from __future__ import annotations

import zipfile
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from urllib.parse import unquote
from xml.etree.ElementTree import Element

from shared.text.epub_archive import Archive, BookRefused, Item, resolve
from shared.text.epub_pages import Section, sections
from shared.text.epub_toc import OPF, contents
from shared.text.reading import left_out_warnings

DC = "{http://purl.org/dc/elements/1.1/}"
CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
XMLENC = "{http://www.w3.org/2001/04/xmlenc#}"
FONT_OBFUSCATION = {"http://www.idpf.org/2008/embedding", "http://ns.adobe.com/pdf/enc#RC"}


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
class Book:
    sections: list[Section]
    title: str | None = None
    author: str | None = None
    language: str | None = None
    cover: Cover | None = None
    warnings: list[str] = field(default_factory=list)  # what was read otherwise than written
    about: dict[str, str] = field(default_factory=dict)  # its description and publisher


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


def read_epub(data: bytes, max_unpacked: int) -> Book:
    archive = Archive(data, max_unpacked)
    opf_path = package_path(archive)
    package = archive.xml(opf_path)
    manifest = manifest_of(package, opf_path)
    _refuse_drm(archive, manifest)
    spine = package.find(f"{OPF}spine")
    if spine is None or not len(spine):
        raise BookRefused("the book has no spine (no reading order)")
    title, left_out = _dc(package, "title"), Counter[str]()
    toc = contents(archive, package, opf_path, manifest)
    read = sections(archive, manifest, spine, toc, title, left_out)
    return Book(
        read,
        title,
        _dc(package, "creator"),
        _dc(package, "language"),
        _cover(archive, package, manifest),
        archive.warnings + left_out_warnings(left_out),
        {k: v for k in ("description", "publisher") if (v := _dc(package, k))},
    )


def package_path(archive: Archive) -> str:
    """Where the container says the package document is."""
    rootfile = archive.xml("META-INF/container.xml").find(f".//{CONTAINER}rootfile")
    if rootfile is None or not rootfile.get("full-path"):
        raise BookRefused("META-INF/container.xml names no package document")
    return str(rootfile.get("full-path"))


def manifest_of(package: Element, opf_path: str) -> dict[str, Item]:
    """The package's files by their ids."""
    return {
        str(item.get("id")): Item(
            resolve(opf_path, item.get("href", "")),
            item.get("media-type", ""),
            frozenset(item.get("properties", "").split()),
        )
        for item in package.iter(f"{OPF}item")
    }


def _dc(package: Element, name: str) -> str | None:
    element = package.find(f"{OPF}metadata/{DC}{name}")
    text = " ".join((element.text or "").split()) if element is not None else ""
    return text or None


def _refuse_drm(archive: Archive, manifest: dict[str, Item]) -> None:
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


def _cover(archive: Archive, package: Element, manifest: dict[str, Item]) -> Cover | None:
    item = next((i for i in manifest.values() if "cover-image" in i.properties), None)
    if item is None:  # EPUB 2: <meta name="cover" content="item id">
        for meta in package.iter(f"{OPF}meta"):
            if meta.get("name") == "cover" and meta.get("content") in manifest:
                item = manifest[str(meta.get("content"))]
    if item is None or item.path not in archive.names or not item.media_type.startswith("image/"):
        return None
    return Cover(archive.read(item.path), item.media_type)
