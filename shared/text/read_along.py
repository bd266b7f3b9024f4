"""A read-along EPUB 3: the book's text with its narration, sentence by sentence (EPUB 3 Media
Overlays: a SMIL document per page whose ``par`` elements pair a sentence's id with its clip of
the chapter's audio).

From an EPUB, the book itself: its pages with an id on every sentence spoken
(``shared.text.epub_marks``), and everything else kept — cover, metadata, navigation, styles,
fonts. An EPUB 2 becomes an EPUB 3 on the way (a navigation document made from its NCX, its
package's EPUB 2 attributes dropped, its pages given HTML's doctype). From any other text,
a simple EPUB 3 of the sentences spoken, a page per chapter (``shared.text.read_along_text``).
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from lxml import etree

from shared.text.epub_archive import resolve
from shared.text.epub_marks import Found, local

OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
SMIL_NS = "http://www.w3.org/ns/SMIL"
OPS_NS = "http://www.idpf.org/2007/ops"
ACTIVE_CLASS = "lyre-active"  # the sentence being read, as reading systems mark it
CSS = f".{ACTIVE_CLASS} {{ background-color: #fde68a; color: inherit; }}\n"
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # every entry's: the same book, the same bytes
STORED = (".m4a", ".mp3", ".png", ".jpg", ".jpeg", ".gif", ".webp")  # compressed already


@dataclass(frozen=True)
class Clip:
    """A sentence spoken, and where it lies in its chapter's audio (seconds)."""

    text: str
    begin: float
    end: float
    paragraph: bool = False  # the first of a paragraph (a book made from text)


@dataclass(frozen=True)
class Narrated:
    """A chapter as heard: its title, its audio file, its sentences' clips in order."""

    title: str
    audio: Path
    clips: list[Clip]


@dataclass(frozen=True)
class About:
    """What the package says of the book."""

    identifier: str  # kept from an EPUB; else the job's
    title: str
    author: str | None
    language: str
    narrator: str
    modified: str  # dcterms:modified, YYYY-MM-DDThh:mm:ssZ


@dataclass
class Package:
    """An EPUB 3 being made: its package document, its files and where the sentences are."""

    opf_path: str
    opf: etree._Element
    files: dict[str, bytes | Path] = field(default_factory=dict)  # path → content, in order
    pages: dict[str, etree._Element] = field(default_factory=dict)  # rewritten on writing
    found: Found = field(default_factory=lambda: Found([]))

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.opf_path)

    def inside(self, name: str) -> str:
        """``name`` in the package document's folder."""
        return posixpath.join(self.folder, name)

    def href(self, path: str, start: str | None = None) -> str:
        """``path`` (in the container) as a URL relative to ``start``'s folder (the
        package's)."""
        base = posixpath.dirname(start) if start else self.folder
        return quote(posixpath.relpath(path, base or "."))

    def item(self, path: str, media_type: str, item_id: str, properties: str = "") -> None:
        manifest = self.opf.find(f"{{{OPF_NS}}}manifest")
        attrs = {"id": item_id, "href": self.href(path), "media-type": media_type}
        if properties:
            attrs["properties"] = properties
        etree.SubElement(manifest, f"{{{OPF_NS}}}item", attrs)

    def meta(self, prop: str, value: str, refines: str | None = None) -> None:
        metadata = self.opf.find(f"{{{OPF_NS}}}metadata")
        element = etree.SubElement(metadata, f"{{{OPF_NS}}}meta", {"property": prop})
        if refines:
            element.set("refines", refines)
        element.text = value


def clock(seconds: float) -> str:
    """A SMIL clock value: H:MM:SS.mmm."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def narrate(package: Package, about: About, chapters: list[Narrated]) -> float:
    """Add the audio, a SMIL per page with sentences found, the metadata; the share of the
    spoken text (by characters) that has a clip."""
    clips = [(chapter, clip) for chapter in chapters for clip in chapter.clips]
    audio: dict[Path, str] = {}
    for chapter in chapters:
        if chapter.audio not in audio:
            audio[chapter.audio] = package.inside(f"audio/chapter-{len(audio) + 1:03d}.m4a")
            package.files[audio[chapter.audio]] = chapter.audio
            package.item(audio[chapter.audio], "audio/mp4", f"lyre-audio-{len(audio)}")
    by_page: dict[str, list[tuple[str, str, float, float]]] = {}
    for (chapter, clip), place in zip(clips, package.found.places, strict=True):
        if place is None:
            continue
        pars = by_page.setdefault(place[0], [])
        if pars and pars[-1][:2] == (place[1], audio[chapter.audio]) and pars[-1][3] == clip.begin:
            pars[-1] = (*pars[-1][:3], clip.end)  # sentences sharing an element: one clip
        else:
            pars.append((place[1], audio[chapter.audio], clip.begin, clip.end))
    manifest = {
        resolve(package.opf_path, i.get("href", "")): i
        for i in package.opf.iter(f"{{{OPF_NS}}}item")
    }
    durations = []
    css = package.inside("lyre-read-along.css")
    for n, (page, pars) in enumerate(by_page.items(), 1):
        path = package.inside(f"overlays/page-{n:03d}.smil")
        package.files[path] = _smil(package, path, page, pars)
        package.item(path, "application/smil+xml", f"lyre-mo-{n}")
        manifest[page].set("media-overlay", f"lyre-mo-{n}")
        durations.append(round(sum(end - begin for _, _, begin, end in pars), 3))
        package.meta("media:duration", clock(durations[-1]), f"#lyre-mo-{n}")
        _link_css(package.pages[page], package.href(css, page))
    package.files[css] = CSS.encode()
    package.item(css, "text/css", "lyre-read-along-css")
    package.meta("media:duration", clock(sum(durations)))
    package.meta("media:active-class", ACTIVE_CLASS)
    package.meta("media:narrator", about.narrator)
    package.meta("dcterms:modified", about.modified)
    spoken = sum(len(clip.text) for _, clip in clips) or 1
    linked = sum(len(c.text) for (_, c), p in zip(clips, package.found.places, strict=True) if p)
    return linked / spoken


def _smil(package: Package, path: str, page: str, pars: list) -> bytes:
    smil = etree.Element(
        f"{{{SMIL_NS}}}smil", {"version": "3.0"}, nsmap={None: SMIL_NS, "epub": OPS_NS}
    )
    body = etree.SubElement(smil, f"{{{SMIL_NS}}}body")
    seq = etree.SubElement(
        body, f"{{{SMIL_NS}}}seq", {f"{{{OPS_NS}}}textref": package.href(page, path)}
    )
    for n, (name, audio, begin, end) in enumerate(pars, 1):
        par = etree.SubElement(seq, f"{{{SMIL_NS}}}par", {"id": f"par-{n}"})
        etree.SubElement(par, f"{{{SMIL_NS}}}text", {"src": f"{package.href(page, path)}#{name}"})
        clip = {
            "src": package.href(audio, path),
            "clipBegin": f"{begin:.3f}s",
            "clipEnd": f"{end:.3f}s",
        }
        etree.SubElement(par, f"{{{SMIL_NS}}}audio", clip)
    return etree.tostring(smil, xml_declaration=True, encoding="utf-8")


def _link_css(page: etree._Element, href: str) -> None:
    head = next((e for e in page if local(e) == "head"), None)
    if head is not None:
        ns = etree.QName(page).namespace
        link = {"rel": "stylesheet", "type": "text/css", "href": href}
        etree.SubElement(head, f"{{{ns}}}link" if ns else "link", link)


def write(package: Package, out: Path) -> None:
    """The container: ``mimetype`` first and stored, then every file in order (the pages as
    rewritten, the package document), media stored, the rest deflated."""
    for path, page in package.pages.items():
        package.files[path] = etree.tostring(
            page, xml_declaration=True, encoding="utf-8", doctype="<!DOCTYPE html>"
        )
    package.files[package.opf_path] = etree.tostring(
        package.opf, xml_declaration=True, encoding="utf-8"
    )
    with zipfile.ZipFile(out, "w") as book:
        book.writestr(zipfile.ZipInfo("mimetype", ZIP_TIME), b"application/epub+zip")
        for path, content in package.files.items():
            info = zipfile.ZipInfo(path, ZIP_TIME)
            stored = path.lower().endswith(STORED)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            if isinstance(content, Path):
                with content.open("rb") as source, book.open(info, "w") as target:
                    while piece := source.read(1 << 20):
                        target.write(piece)
            else:
                book.writestr(info, content)
