"""Inputs told apart by content and read into chapters: EPUB 2 and 3 (built by tests/books.py),
HTML, Markdown and text; every bad book refused with its reason."""

from __future__ import annotations

import io
import zipfile

import pytest

from shared.text.chunking import chunk_text
from shared.text.documents import read_document
from shared.text.epub_archive import BookRefused
from shared.text.lexicon import Lexicon, LexiconRefused, merge
from tests.books import (
    COPYRIGHT_TEXT,
    FOOTNOTE_TEXT,
    Chapter,
    make_epub,
    nested_book,
    three_chapter_book,
    zip_bomb,
)

TITLES = ["Chapter One: The Harbour", "Chapter Two: The Storm", "Chapter Three: The Lamp"]


@pytest.mark.parametrize("version", [2, 3])
def test_an_epub_reads_in_spine_order_with_toc_titles_and_metadata(tmp_path, version):
    cover = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    path = make_epub(
        tmp_path / "b.epub",
        three_chapter_book(),
        version=version,
        title="The Lighthouse",
        author="Ada Writer",
        language="en-GB",
        cover=cover,
        copyright_page=True,
        footnotes=True,
    )
    document = read_document(path.read_bytes())
    assert document.kind == "epub" and document.structured
    assert (document.title, document.author, document.language) == (
        "The Lighthouse",
        "Ada Writer",
        "en-GB",
    )
    assert document.cover is not None and document.cover.data == cover
    chunked = chunk_text(document.text, structured=True)
    assert chunked.chapters == TITLES
    # the cover and copyright pages are marked and skipped; footnotes and their markers too
    assert COPYRIGHT_TEXT not in document.text and FOOTNOTE_TEXT not in document.text
    first = three_chapter_book()[0].paragraphs[0]
    assert f"{first}\n" in document.text or document.text.count(first) == 1
    assert f"{first}1" not in document.text
    # each title is read once: the chapter's own <h1> repeats it
    assert all(document.text.count(title) == 1 for title in TITLES)


@pytest.mark.parametrize("version", [2, 3])
def test_a_nested_toc_gives_a_chapter_per_entry_in_reading_order(tmp_path, version):
    path = make_epub(tmp_path / "n.epub", nested_book(), version=version)
    chunked = chunk_text(read_document(path.read_bytes()).text, structured=True)
    assert chunked.chapters == [
        "Part One",
        "The First Chapter",
        "The Second Chapter",
        "Part Two",
        "The Third Chapter",
    ]


def test_chapter_lines_inside_a_book_do_not_split_its_chapters(tmp_path):
    chapters = [Chapter("Prologue", ["Epilogue", "It began at sea."], heading=False)]
    path = make_epub(tmp_path / "e.epub", chapters)
    chunked = chunk_text(read_document(path.read_bytes()).text, structured=True)
    assert chunked.chapters == ["Prologue"]


def test_font_obfuscation_is_not_drm(tmp_path):
    path = make_epub(tmp_path / "f.epub", three_chapter_book(), font_obfuscation=True)
    assert len(chunk_text(read_document(path.read_bytes()).text).chapters) == 3


def _not_a_zip(tmp_path):
    path = tmp_path / "x.epub"
    path.write_bytes(b"PK\x03\x04" + b"mimetype" * 20)
    return path


def _zip_not_epub(tmp_path):
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_not_a_zip, "not a zip archive"),
        (_zip_not_epub, "not an EPUB"),
        (lambda p: zip_bomb(p / "bomb.epub", 300 * 2**20), "unpacks to more than 256 MiB"),
        (lambda p: make_epub(p / "d.epub", three_chapter_book(), drm=True), "encrypted (DRM)"),
        (lambda p: make_epub(p / "s.epub", three_chapter_book(), no_spine=True), "no spine"),
        (
            lambda p: make_epub(p / "m.epub", three_chapter_book(), break_spine=True),
            "which is not in the book",
        ),
    ],
)
def test_bad_books_are_refused_with_a_reason(tmp_path, make, message):
    with pytest.raises(BookRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_document(make(tmp_path).read_bytes())


def test_a_page_that_is_not_well_formed_is_read_as_html_and_the_book_says_so(tmp_path):
    """As reading systems do: the book is read whole, not refused for one page."""
    path = make_epub(tmp_path / "m.epub", three_chapter_book(), malformed=True)
    document = read_document(path.read_bytes())
    (warning,) = document.warnings
    assert "ch01.xhtml is not well-formed XHTML" in warning and "read as HTML" in warning
    chunked = chunk_text(document.text, structured=True)
    assert len(chunked.chapters) == 3 and "The harbour was quiet" in document.text


@pytest.mark.parametrize("quirk", ["mimetype last", "mimetype with a newline", "no mimetype"])
def test_a_container_whose_mimetype_is_not_first_or_not_exact_is_read(tmp_path, quirk):
    path = make_epub(tmp_path / "q.epub", three_chapter_book())
    with zipfile.ZipFile(path) as source:
        members = [(info, source.read(info)) for info in source.infolist()]
    mimetype = [m for m in members if m[0].filename == "mimetype"]
    rest = [m for m in members if m[0].filename != "mimetype"]
    if quirk == "mimetype with a newline":
        mimetype = [(mimetype[0][0], b"application/epub+zip\n")]
    ordered = {"mimetype last": rest + mimetype, "no mimetype": rest}.get(quirk, mimetype + rest)
    quirky = tmp_path / "quirky.epub"
    with zipfile.ZipFile(quirky, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in ordered:
            archive.writestr(info.filename, data)
    assert len(chunk_text(read_document(quirky.read_bytes()).text).chapters) == 3


def test_a_zip_bomb_that_lies_about_its_sizes_is_caught_while_reading(tmp_path):
    """A member whose header declares 1 KiB but inflates to 2 MiB: the read is counted."""
    path = make_epub(tmp_path / "b.epub", three_chapter_book())
    data = bytearray(path.read_bytes())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    assert sum(i.file_size for i in archive.infolist()) < 64 * 1024
    with pytest.raises(BookRefused, match="unpacks to more than"):
        read_document(bytes(data), max_unpacked=2 * 1024)


def test_html_chapters_come_from_its_headings():
    page = b"""<!DOCTYPE html><html><head><title>On Boats</title><style>p{}</style></head>
    <body><h1>On Boats</h1><nav>Home | About</nav>
    <h2>Sails</h2><p>Sails catch the wind.<sup><a href="#n1">1</a></sup></p>
    <script>alert(1)</script>
    <h2>Oars</h2><p>Oars need arms.<br>Strong ones.</p>
    <aside role="doc-footnote" id="n1">A note.</aside></body></html>"""
    document = read_document(page)
    assert document.kind == "html" and document.title == "On Boats"
    chunked = chunk_text(document.text, structured=True)
    assert chunked.chapters == ["Sails", "Oars"]
    for gone in ("alert", "Home", "p{}", "A note", "wind.1"):
        assert gone not in document.text
    assert "Oars need arms. Strong ones." in document.text


def test_markdown_and_text_are_told_apart_and_keep_their_own_chapters():
    assert read_document(b"# One\n\nHi.").kind == "markdown"
    plain = read_document(b"Chapter 1\n\nIt was late.\n\nChapter 2\n\nIt was early.")
    assert plain.kind == "text" and not plain.structured
    assert chunk_text(plain.text).chapters == ["Chapter 1", "Chapter 2"]
    with pytest.raises(BookRefused, match="binary"):
        read_document(b"\x7fELF\x00\x01")


def test_lexicon_whole_words_case_rules_and_longest_first():
    lexicon = Lexicon(
        {"siobhan": "shiv-awn", "US": "you ess", "New York": "noo york", "york": "yawk"}
    )
    said = lexicon.apply("Siobhan met siobhan in New York, not York. Siobhans, us and US.")
    assert said == ("Shiv-awn met shiv-awn in noo york, not Yawk. Siobhans, us and you ess.")
    assert lexicon.applied == {"siobhan": 2, "New York": 1, "york": 1, "US": 1}


def test_a_request_lexicon_overrides_the_tenants_and_bad_ones_are_refused():
    assert merge({"gif": "jif", "sql": "sequel"}, {"gif": "ghif"}) == {
        "gif": "ghif",
        "sql": "sequel",
    }
    with pytest.raises(LexiconRefused):
        merge({}, {"": "x"})
    with pytest.raises(LexiconRefused):
        merge({}, {"word": 3})  # type: ignore[dict-item]
