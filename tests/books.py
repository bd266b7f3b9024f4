"""Small EPUB books built in code for the tests: chapters, nesting, covers and broken variants."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from xml.sax.saxutils import escape

FOOTNOTE_TEXT = "A footnote that is not read."
COPYRIGHT_TEXT = "Copyright 2026 Ada Writer. All rights reserved."
UID = "urn:uuid:0b5e3c1a-7d2f-4e8a-9c61-2f4d8b7a1e05"
XHTML = "application/xhtml+xml"
NCX = "application/x-dtbncx+xml"
DRM_ALGORITHM = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
FONT_ALGORITHM = "http://www.idpf.org/2008/embedding"
_XML = '<?xml version="1.0" encoding="utf-8"?>\n'
_CONTAINER = (
    _XML + '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
    '<rootfiles><rootfile full-path="OEBPS/content.opf" '
    'media-type="application/oebps-package+xml"/></rootfiles></container>\n'
)
_NOTEREF = {
    3: '<a epub:type="noteref" href="#fn1">1</a>',
    2: '<sup id="ref1"><a href="#fn1">1</a></sup>',
}
_FOOTNOTE = {
    3: f'<aside epub:type="footnote" id="fn1"><p>{FOOTNOTE_TEXT}</p></aside>',
    2: f'<div class="footnote" id="fn1"><p><a href="#ref1">1</a> {FOOTNOTE_TEXT}</p></div>',
}


@dataclass
class Chapter:
    title: str  # the TOC title
    paragraphs: list[str]  # body paragraphs, plain text
    children: list[Chapter] = field(default_factory=list)  # nested TOC entries, each its own file
    heading: bool = True  # write an <h1>title</h1> at the top of the body


@dataclass
class _Book:
    version: int
    files: dict[str, str | bytes] = field(default_factory=dict)  # path under OEBPS/ -> content
    items: list[tuple[str, str, str, str]] = field(default_factory=list)  # id, href, type, props
    spine: list[str] = field(default_factory=list)
    marks: list[tuple[str, str, str]] = field(default_factory=list)  # type, href, label
    meta: list[str] = field(default_factory=list)

    def add(self, ident: str, href: str, media: str, data: str | bytes, props: str = "") -> None:
        self.files[href] = data
        self.items.append((ident, href, media, props))


def _flatten(chapters: list[Chapter]) -> list[Chapter]:
    return [c for ch in chapters for c in [ch, *_flatten(ch.children)]]


def _href(n: int) -> str:
    return f"text/ch{n:02d}.xhtml"


def _page(title: str, body: list[str], version: int, body_type: str = "") -> str:
    ns = ' xmlns:epub="http://www.idpf.org/2007/ops"' if version == 3 else ""
    attr = _attr("epub:type", body_type) if version == 3 else ""
    return (
        f'{_XML}<html xmlns="http://www.w3.org/1999/xhtml"{ns}>\n'
        f"<head><title>{escape(title)}</title></head>\n<body{attr}>\n"
        + "".join(line + "\n" for line in body)
        + "</body>\n</html>\n"
    )


def _chapter(ch: Chapter, version: int, note: bool, broken: bool) -> str:
    paras = [escape(p) for p in ch.paragraphs]
    if note and paras:
        paras[0] += _NOTEREF[version]
    body = [f"<h1>{escape(ch.title)}</h1>"] if ch.heading else []
    body += [f"<p>{p}</p>" for p in paras]
    body += [_FOOTNOTE[version]] if note else []
    body += ["<p>"] if broken else []  # never closed: the </body> after it is a mismatched tag
    return _page(ch.title, body, version)


def _toc_list(chapters: list[Chapter], numbers: Iterator[int]) -> str:
    items = []
    for ch in chapters:
        link = f'<a href="{_href(next(numbers))}">{escape(ch.title)}</a>'
        items.append(f"<li>{link}{_toc_list(ch.children, numbers) if ch.children else ''}</li>")
    return f"<ol>{''.join(items)}</ol>"


def _nav_points(chapters: list[Chapter], numbers: Iterator[int]) -> str:
    points = []
    for ch in chapters:
        n = next(numbers)
        points.append(
            f'<navPoint id="nav{n}" playOrder="{n}"><navLabel><text>{escape(ch.title)}</text>'
            f'</navLabel><content src="{_href(n)}"/>{_nav_points(ch.children, numbers)}</navPoint>'
        )
    return "".join(points)


def _depth(chapters: list[Chapter]) -> int:
    return max((1 + _depth(ch.children) for ch in chapters), default=0)


def _ncx(chapters: list[Chapter], title: str) -> str:
    return (
        f'{_XML}<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"><head>'
        f'<meta name="dtb:uid" content="{UID}"/>'
        f'<meta name="dtb:depth" content="{_depth(chapters)}"/>'
        f"</head><docTitle><text>{escape(title)}</text></docTitle>"
        f"<navMap>{_nav_points(chapters, count(1))}</navMap></ncx>\n"
    )


def _nav(chapters: list[Chapter], marks: list[tuple[str, str, str]]) -> str:
    body = [f'<nav epub:type="toc"><h1>Contents</h1>{_toc_list(chapters, count(1))}</nav>']
    if marks:
        links = "".join(
            f'<li><a epub:type="{t}" href="{h}">{label}</a></li>' for t, h, label in marks
        )
        body.append(f'<nav epub:type="landmarks" hidden=""><ol>{links}</ol></nav>')
    return _page("Contents", body, 3)


def _front_matter(book: _Book, cover: bytes | None, copyright_page: bool) -> None:
    if cover is not None:
        props = "cover-image" if book.version == 3 else ""
        book.add("cover-image", "images/cover.jpg", "image/jpeg", cover, props)
        if book.version == 2:
            book.meta.append('<meta name="cover" content="cover-image"/>')
        img = ['<img src="../images/cover.jpg" alt="Cover"/>']
        book.add("cover", "text/cover.xhtml", XHTML, _page("Cover", img, book.version, "cover"))
        book.spine.append("cover")
        book.marks.append(("cover", "text/cover.xhtml", "Cover"))
    if copyright_page:
        text = [f"<p>{COPYRIGHT_TEXT}</p>"]
        page = _page("Copyright", text, book.version, "copyright-page")
        book.add("copyright", "text/copyright.xhtml", XHTML, page)
        book.spine.append("copyright")
        book.marks.append(("copyright-page", "text/copyright.xhtml", "Copyright"))


def _attr(name: str, value: str) -> str:
    return f' {name}="{value}"' if value else ""


def _opf(book: _Book, title: str, author: str, language: str, no_spine: bool) -> str:
    meta = [
        f'<dc:identifier id="uid">{UID}</dc:identifier>',
        f"<dc:title>{escape(title)}</dc:title>",
        f"<dc:creator>{escape(author)}</dc:creator>",
        f"<dc:language>{escape(language)}</dc:language>",
        *book.meta,
    ]
    if book.version == 3:
        meta.append('<meta property="dcterms:modified">2026-01-01T00:00:00Z</meta>')
    items = "".join(
        f'<item id="{i}" href="{h}" media-type="{m}"{_attr("properties", p)}/>'
        for i, h, m, p in book.items
    )
    refs = "".join(f'<itemref idref="{i}"/>' for i in book.spine)
    spine = "" if no_spine else f'<spine toc="ncx">{refs}</spine>'
    guide = "".join(f'<reference type="{t}" title="{lb}" href="{h}"/>' for t, h, lb in book.marks)
    guide = f"<guide>{guide}</guide>" if guide and book.version == 2 else ""
    return (
        f'{_XML}<package xmlns="http://www.idpf.org/2007/opf" version="{book.version}.0" '
        'unique-identifier="uid"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/" '
        f'xmlns:opf="http://www.idpf.org/2007/opf">{"".join(meta)}</metadata>'
        f"<manifest>{items}</manifest>{spine}{guide}</package>\n"
    )


def _encryption(uris: list[tuple[str, str]]) -> str:
    data = "".join(
        f'<enc:EncryptedData><enc:EncryptionMethod Algorithm="{alg}"/><enc:CipherData>'
        f'<enc:CipherReference URI="{uri}"/></enc:CipherData></enc:EncryptedData>'
        for alg, uri in uris
    )
    return (
        f'{_XML}<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
        f'xmlns:enc="http://www.w3.org/2001/04/xmlenc#">{data}</encryption>\n'
    )


def _info(name: str, method: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)  # a fixed 1980 timestamp, so the bytes are reproducible
    info.compress_type = method
    info.external_attr = 0o644 << 16
    return info


def _write(
    path: str | Path, book: _Book, opf: str, crypt: list[tuple[str, str]], zeros: int = 0
) -> Path:
    path = Path(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(_info("mimetype", zipfile.ZIP_STORED), "application/epub+zip")
        zf.writestr(_info("META-INF/container.xml"), _CONTAINER)
        if crypt:
            zf.writestr(_info("META-INF/encryption.xml"), _encryption(crypt))
        zf.writestr(_info("OEBPS/content.opf"), opf)
        for href, data in book.files.items():
            zf.writestr(_info(f"OEBPS/{href}"), data)
        if zeros:
            piece = bytes(1 << 20)
            with zf.open(_info("OEBPS/data/zeros.bin"), "w", force_zip64=True) as out:
                for start in range(0, zeros, len(piece)):
                    out.write(piece[: zeros - start])
    return path


def _text(book: _Book, chapters: list[Chapter], title: str, note: bool, broken: bool) -> None:
    """Add the chapters (to the spine too), the NCX and, in EPUB 3, the navigation document."""
    for n, ch in enumerate(_flatten(chapters), 1):
        page = _chapter(ch, book.version, note=note and n == 1, broken=broken and n == 1)
        book.add(f"ch{n:02d}", _href(n), XHTML, page)
        book.spine.append(f"ch{n:02d}")
    book.add("ncx", "toc.ncx", NCX, _ncx(chapters, title))
    if book.version == 3:
        book.add("nav", "nav.xhtml", XHTML, _nav(chapters, book.marks), "nav")


def make_epub(
    path: str | Path,
    chapters: list[Chapter],
    *,
    version: int = 3,
    title: str = "A Small Book",
    author: str = "Ada Writer",
    language: str = "en",
    cover: bytes | None = None,
    copyright_page: bool = False,
    footnotes: bool = False,
    drm: bool = False,
    font_obfuscation: bool = False,
    break_spine: bool = False,
    no_spine: bool = False,
    malformed: bool = False,
    description: str | None = None,
    publisher: str | None = None,
) -> Path:
    """Write an EPUB 3 (or 2) book of these chapters to ``path``, with the asked-for quirks."""
    book = _Book(version)
    for name, value in (("description", description), ("publisher", publisher)):
        if value:
            book.meta.append(f"<dc:{name}>{escape(value)}</dc:{name}>")
    _front_matter(book, cover, copyright_page)
    _text(book, chapters, title, footnotes, malformed)
    if break_spine:  # in the manifest and the spine, but not in the zip
        book.items.append(("missing", "text/missing.xhtml", XHTML, ""))
        book.spine.append("missing")
    encrypted = [(DRM_ALGORITHM, "OEBPS/" + _href(1))] if drm else []
    if font_obfuscation:
        book.add("font", "fonts/f.otf", "application/vnd.ms-opentype", b"OTTO" + bytes(range(256)))
        encrypted.append((FONT_ALGORITHM, "OEBPS/fonts/f.otf"))
    opf = _opf(book, title, author, language, no_spine)
    return _write(path, book, opf, encrypted)


def zip_bomb(path: str | Path, unpacked_bytes: int) -> Path:
    """A one-chapter EPUB plus ``OEBPS/data/zeros.bin``: that many zero bytes, deflated."""
    book = _Book(3)
    ch = Chapter("A Short Chapter", ["This book is small, but it carries something large."])
    _text(book, [ch], "A Small Book", note=False, broken=False)
    book.items.append(("zeros", "data/zeros.bin", "application/octet-stream", ""))
    opf = _opf(book, "A Small Book", "Ada Writer", "en", no_spine=False)
    return _write(path, book, opf, [], zeros=unpacked_bytes)


def three_chapter_book() -> list[Chapter]:
    """Three flat chapters of plain English sentences."""
    return [
        Chapter(
            "Chapter One: The Harbour",
            [
                "The harbour was quiet in the early morning. Small boats rocked by the wall.",
                "Mara walked along the pier with bread. She waved to the fishermen.",
                "A grey gull watched her from the top of a wooden post.",
            ],
        ),
        Chapter(
            "Chapter Two: The Storm",
            [
                "By the afternoon the sky was heavy and dark. The wind pulled at the sails.",
                "Rain came down in long silver lines. Everyone hurried indoors to wait.",
            ],
        ),
        Chapter(
            "Chapter Three: The Lamp",
            [
                "When night fell, Mara climbed the narrow stairs of the lighthouse.",
                "She lit the great lamp and watched its beam sweep across the water.",
                "Far away, a small boat turned towards the light and found its way home.",
            ],
        ),
    ]


def nested_book() -> list[Chapter]:
    """Part One (The First Chapter, The Second Chapter), then Part Two (The Third Chapter)."""
    first = Chapter("The First Chapter", ["The road left the village at dawn."])
    second = Chapter("The Second Chapter", ["They crossed a wide green valley.", "They rested."])
    third = Chapter("The Third Chapter", ["The city gates were open, and they walked inside."])
    return [
        Chapter("Part One", ["This part tells how the journey began."], [first, second]),
        Chapter("Part Two", ["This part tells how the journey ended."], [third]),
    ]
