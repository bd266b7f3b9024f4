"""The two starts of a read-along EPUB (``shared.text.read_along``): the submitted EPUB, its
sentences marked and made an EPUB 3 where it is an EPUB 2; or a simple EPUB 3 made from the
sentences spoken, for a text, Markdown, HTML or SSML job."""

from __future__ import annotations

from html import escape

from lxml import etree

from shared.text.epub import manifest_of, package_path
from shared.text.epub_archive import Archive, resolve
from shared.text.epub_marks import Found, local, mark_sentences, parse_page, safe_parser
from shared.text.epub_pages import read_pages
from shared.text.epub_toc import Entry, contents
from shared.text.read_along import DC_NS, OPF_NS, About, Narrated, Package

XHTML_NS = "http://www.w3.org/1999/xhtml"
NCX_NS = "http://www.daisy.org/z3986/2005/ncx/"
HTML_TYPES = ("application/xhtml+xml", "text/html")
HTTP_EQUIV = {"content-type", "default-style", "refresh", "x-ua-compatible"}


def from_epub(data: bytes, sentences: list[str], max_unpacked: int) -> Package:
    """The book, its read pages' sentences marked; an EPUB 2 made an EPUB 3."""
    archive = Archive(data, max_unpacked)
    opf_path = package_path(archive)
    et_package = archive.xml(opf_path)
    manifest = manifest_of(et_package, opf_path)
    toc = contents(archive, et_package, opf_path, manifest)
    spine = et_package.find(f"{{{OPF_NS}}}spine")
    assert spine is not None  # the book was read at submission
    read = read_pages(archive, manifest, spine, toc.skipped)
    package = Package(opf_path, etree.fromstring(archive.read(opf_path), safe_parser()))
    for name in sorted(archive.names, key=lambda n: (n != "META-INF/container.xml", n)):
        if name not in ("mimetype", opf_path) and not name.endswith("/"):
            package.files[name] = archive.read(name)
    pages = {p: parse_page(package.files[p]) for p in read}  # type: ignore[arg-type]
    package.found = mark_sentences(pages, sentences)
    package.pages = dict(package.found.pages)
    if not package.opf.get("version", "").startswith("3"):
        _epub3(package, toc.entries)
    _uid_in_ncx(package)
    _drop_meta(package, "dcterms:modified")
    return package


def _epub3(package: Package, entries: list[Entry]) -> None:
    """An EPUB 2's package and pages as EPUB 3 has them."""
    opf = package.opf
    opf.set("version", "3.0")
    for element in opf.iter():
        for name in [k for k in element.attrib if k.startswith(f"{{{OPF_NS}}}")]:
            del element.attrib[name]  # opf:role, opf:file-as, opf:scheme, opf:event
    etree.cleanup_namespaces(opf)  # their prefix's declaration
    items = {i.get("id"): i for i in opf.iter(f"{{{OPF_NS}}}item")}
    for meta in opf.iter(f"{{{OPF_NS}}}meta"):
        if meta.get("name") == "cover" and meta.get("content") in items:
            items[meta.get("content")].set("properties", "cover-image")
    for item in items.values():
        path = resolve(package.opf_path, item.get("href", ""))
        if item.get("media-type") in HTML_TYPES and path in package.files:
            page = package.pages.get(path)
            if page is None:
                page = package.pages[path] = parse_page(package.files[path])  # type: ignore[arg-type]
            _legacy_meta(page)
            kinds = {local(e) for e in page.iter()}
            properties = [p for p, tag in (("svg", "svg"), ("scripted", "script")) if tag in kinds]
            if properties:
                item.set("properties", " ".join(properties))
    nav = package.inside("lyre-nav.xhtml")
    package.files[nav] = _nav_page(package, nav, entries)
    package.item(nav, "application/xhtml+xml", "lyre-nav", "nav")


def _legacy_meta(page: etree._Element) -> None:
    """XHTML 1.1's ``<meta http-equiv>`` values HTML has no use for (Content-Style-Type)."""
    for meta in list(page.iter(f"{{{XHTML_NS}}}meta")):
        equiv = (meta.get("http-equiv") or "").lower()
        if equiv and equiv not in HTTP_EQUIV:
            meta.getparent().remove(meta)


def _uid_in_ncx(package: Package) -> None:
    """The NCX says the package's identifier (EPUBCheck's NCX-001)."""
    opf = package.opf
    uid = opf.find(f".//{{{DC_NS}}}identifier[@id='{opf.get('unique-identifier')}']")
    for item in opf.iter(f"{{{OPF_NS}}}item"):
        if item.get("media-type") != "application/x-dtbncx+xml" or uid is None:
            continue
        path = resolve(package.opf_path, item.get("href", ""))
        ncx = etree.fromstring(package.files[path], safe_parser())  # type: ignore[arg-type]
        for meta in ncx.iter(f"{{{NCX_NS}}}meta"):
            if meta.get("name") == "dtb:uid":
                meta.set("content", (uid.text or "").strip())
        package.files[path] = etree.tostring(ncx, xml_declaration=True, encoding="utf-8")


def _drop_meta(package: Package, prop: str) -> None:
    for meta in list(package.opf.iter(f"{{{OPF_NS}}}meta")):
        if meta.get("property") == prop:
            meta.getparent().remove(meta)


def _nav_page(package: Package, path: str, entries: list[Entry]) -> bytes:
    """A navigation document listing ``entries`` as the book nests them."""
    lines, depth = [], -1
    for entry in entries:
        href = package.href(entry.path, path) + (f"#{entry.fragment}" if entry.fragment else "")
        link = f'<a href="{escape(href)}">{escape(entry.title)}</a>'
        level = min(entry.depth, depth + 1)
        if level > depth:
            lines.append("<ol>" * (level - depth))
        else:
            lines.append("</li></ol>" * (depth - level) + "</li>")
        lines.append(f"<li>{link}")
        depth = level
    lines.append("</li></ol>" * (depth + 1))
    return _page("Contents", f'<nav epub:type="toc" id="toc">{"".join(lines)}</nav>', "")


def _page(title: str, body: str, head: str, language: str = "en") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        f'<html xmlns="{XHTML_NS}" xmlns:epub="http://www.idpf.org/2007/ops" '
        f'lang="{escape(language)}" xml:lang="{escape(language)}">\n'
        f'<head><meta charset="utf-8"/><title>{escape(title)}</title>{head}</head>\n'
        f"<body>{body}</body>\n</html>\n"
    ).encode()


def _chapter_body(chapter: Narrated, names: list[str], title: str) -> str:
    """The chapter's title as a heading, then its paragraphs, each sentence a span."""
    body: list[str] = []
    held: list[str] = []
    for k, (clip, name) in enumerate(zip(chapter.clips, names, strict=True)):
        span = f'<span id="{name}">{escape(clip.text)}</span>'
        if k == 0 and chapter.title and clip.text.strip() == chapter.title.strip():
            body.append(f"<h1>{span}</h1>")
            continue
        if clip.paragraph and held:
            body.append(f"<p>{' '.join(held)}</p>")
            held = []
        held.append(span)
    if held:
        body.append(f"<p>{' '.join(held)}</p>")
    if not chapter.title:
        body.insert(0, f"<h1>{escape(title)}</h1>")
    return f'<section epub:type="chapter">{"".join(body)}</section>'


def from_text(about: About, chapters: list[Narrated]) -> Package:
    """A simple EPUB 3 of the sentences spoken: a page per chapter, its title a heading and
    its paragraphs as they were, each sentence a span."""
    opf = etree.fromstring(
        f'<package xmlns="{OPF_NS}" version="3.0" unique-identifier="uid" xml:lang="'
        f'{escape(about.language)}"><metadata xmlns:dc="{DC_NS}"/><manifest/>'
        "<spine/></package>"
    )
    package = Package("EPUB/package.opf", opf)
    metadata = opf[0]
    for name, value in (
        ("identifier", about.identifier),
        ("title", about.title),
        ("language", about.language),
        ("creator", about.author),
    ):
        if value:
            element = etree.SubElement(metadata, f"{{{DC_NS}}}{name}")
            element.text = value
            if name == "identifier":
                element.set("id", "uid")
    package.files["META-INF/container.xml"] = (
        b'<?xml version="1.0" encoding="utf-8"?>\n<container version="1.0" '
        b'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles><rootfile '
        b'full-path="EPUB/package.opf" media-type="application/oebps-package+xml"/>'
        b"</rootfiles></container>\n"
    )
    places: list[tuple[str, str] | None] = []
    entries = []
    for n, chapter in enumerate(chapters, 1):
        path = f"EPUB/chapter-{n:03d}.xhtml"
        title = chapter.title or about.title
        entries.append(Entry(title, path, "", 0))
        names = [f"s{n}-{k}" for k in range(1, len(chapter.clips) + 1)]
        places += [(path, name) for name in names]
        package.files[path] = _page(title, _chapter_body(chapter, names, title), "", about.language)
        package.pages[path] = parse_page(package.files[path])  # type: ignore[arg-type]
        package.item(path, "application/xhtml+xml", f"chapter-{n}")
        etree.SubElement(opf[2], f"{{{OPF_NS}}}itemref", {"idref": f"chapter-{n}"})
    package.found = Found(places)
    nav = "EPUB/nav.xhtml"
    package.files[nav] = _nav_page(package, nav, entries)
    package.item(nav, "application/xhtml+xml", "nav", "nav")
    return package
