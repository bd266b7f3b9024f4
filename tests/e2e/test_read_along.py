"""Read-along EPUBs from ``lyre synth --read-along``, read back by others than their writer
(``tests/read_along.py``): the official EPUBCheck with no error and no warning; the overlays
walked with the standard library's zip and XML readers, each clip's audio measured by FFmpeg
(PyAV); the sentences covered, against the captions (webvtt-py). The test books: the
toolchains' EPUBs of ``tests/fixtures/epubs`` (EPUB 2 and 3, one with a cover, one not
well-formed), a made EPUB with a cover, footnotes and a table of contents, Markdown, SSML, HTML
and one plain sentence; all made first, then checked by one EPUBCheck run."""

from __future__ import annotations

import posixpath
import zipfile
from pathlib import Path

import pytest

from tests.books import make_epub, three_chapter_book
from tests.e2e.test_audiobook import jpeg, lyre_synth
from tests.read_along import check, covered, overlays

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "epubs"
OPF = "{http://www.idpf.org/2007/opf}"
TOOLCHAINS = ["calibre", "pandoc-epub2", "pandoc", "sphinx", "docbook", "quirky-malformed"]
TEXTS = {
    "md": '# The Harbour\n\nIt was 3:30 when Dr. Smith arrived. "Is the lamp lit?"\n\n'
    "The keeper nodded.\n\n# The Storm\n\nRain came at dusk. It did not stop.",
    "ssml": '<speak><p>Hello there.</p><break time="500ms"/><p>A <mark name="m"/>mark, and a '
    '<say-as interpret-as="characters">BBC</say-as> word.</p></speak>',
    "txt": "One short sentence, alone.",
    "html": "<!DOCTYPE html><html><head><title>Notes</title></head><body><h1>Notes</h1>"
    "<h2>First</h2><p>The lamp is <em>lit. Ships</em> pass.</p><h2>Second</h2>"
    "<p>Rain &amp; wind.</p></body></html>",
}
COVER = jpeg()


def read_along(folder: Path, source: Path, work: Path | None = None) -> tuple[Path, Path]:
    out = folder / "book.mp3"
    lyre_synth(folder, str(source), "-o", str(out), "--read-along", "--captions", work=work)
    return folder / "book.epub", folder / "book.vtt"


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> dict[str, tuple[Path, Path]]:
    """Every test book's read-along EPUB and captions, and EPUBCheck's word on all of them."""
    made = {}
    for name in TOOLCHAINS:
        made[name] = read_along(tmp_path_factory.mktemp(name), FIXTURES / f"{name}.epub")
    folder = tmp_path_factory.mktemp("made")
    book = make_epub(folder / "in.epub", three_chapter_book(), cover=COVER, footnotes=True)
    made["made"] = read_along(folder, book)
    for kind, text in TEXTS.items():
        folder = tmp_path_factory.mktemp(kind)
        (folder / f"in.{kind}").write_text(text)
        made[kind] = read_along(folder, folder / f"in.{kind}")
    assert check(*(epub for epub, _ in made.values())) == []
    return made


@pytest.mark.parametrize("name", TOOLCHAINS)
def test_the_books_own_pages_read_along(books, name):
    epub, captions = books[name]
    read, package = overlays(epub)
    assert covered(captions, read) >= 0.99
    assert package.get("version") == "3.0"
    source = zipfile.ZipFile(FIXTURES / f"{name}.epub")
    made = zipfile.ZipFile(epub)
    styles = [n for n in source.namelist() if n.endswith((".css", ".png", ".jpg"))]
    assert all(made.read(n) == source.read(n) for n in styles)  # kept, byte for byte


def test_a_book_with_a_cover_footnotes_and_a_table_of_contents(books):
    epub, captions = books["made"]
    read, package = overlays(epub)
    assert covered(captions, read) >= 0.99
    assert not any("footnote" in text.casefold() for text in read)
    made = zipfile.ZipFile(epub)
    items = package.iter(f"{OPF}item")
    (image,) = [i for i in items if "cover-image" in i.get("properties", "")]
    opf_dir = posixpath.dirname(next(n for n in made.namelist() if n.endswith(".opf")))
    assert made.read(posixpath.join(opf_dir, image.get("href"))) == COVER
    metas = package.iter(f"{OPF}meta")
    meta = {m.get("property"): m.text for m in metas if not m.get("refines")}
    assert meta["media:active-class"] and meta["media:narrator"] == "Tara (Lyre)"
    durations = [m.text for m in package.iter(f"{OPF}meta") if m.get("refines")]
    assert len(durations) == 3  # one overlay per chapter's page


@pytest.mark.parametrize("kind", TEXTS)
def test_any_other_text_becomes_a_simple_epub_3(books, kind):
    epub, captions = books[kind]
    read, _ = overlays(epub)
    assert covered(captions, read) == 1.0


def test_a_redone_chunk_is_read_along_as_redone(tmp_path):
    source = tmp_path / "in.md"
    source.write_text("# One\n\nThe first words.\n\n# Two\n\nThe second words.")
    work = tmp_path / "work"
    epub, _ = read_along(tmp_path, source, work=work)
    assert "The second words." in zipfile.ZipFile(epub).read("EPUB/chapter-002.xhtml").decode()
    lyre_synth(
        tmp_path,
        *(str(source), "-o", str(tmp_path / "book.mp3"), "--read-along"),
        *("--redo-chunk", "3", "--redo-text", "Other words instead."),
        work=work,
    )
    page = zipfile.ZipFile(epub).read("EPUB/chapter-002.xhtml").decode()
    assert "Other words instead." in page and "second" not in page
    assert check(epub) == []
