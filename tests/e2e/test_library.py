"""``lyre synth --library DIR``: the book shelved as library servers read it, checked file by
file, and what a server such as audiobookshelf reads from it — the audio's own tags (mutagen),
its chapters (mutagen and FFmpeg through PyAV), the sidecars (json, ElementTree) — agreeing."""

from __future__ import annotations

import json
from xml.etree import ElementTree

import av
import mutagen.mp3
import mutagen.mp4
import pytest

from tests.books import make_epub, three_chapter_book
from tests.e2e.test_audiobook import TITLES, jpeg, lyre_synth

pytestmark = pytest.mark.slow

DC = "{http://purl.org/dc/elements/1.1/}"
OPF = "{http://www.idpf.org/2007/opf}"
ABOUT = "A keeper's year at the harbour light: storms, ships and <em>the lamp</em>."


@pytest.mark.parametrize("fmt", ["m4b", "mp3"])
def test_the_book_is_shelved_as_author_and_title_with_its_sidecars(tmp_path, fmt):
    cover = jpeg()
    book = make_epub(
        tmp_path / "in.epub",
        three_chapter_book(),
        cover=cover,
        title="Harbour: Lights?",
        description=ABOUT,
        publisher="Lighthouse Press",
    )
    library = tmp_path / "library"
    library.mkdir()
    ran = lyre_synth(
        tmp_path,
        str(book),
        "-o",
        str(tmp_path / f"out.{fmt}"),
        "--library",
        str(library),
        "--read-along",
    )
    shelf = library / "Ada Writer" / "Harbour Lights"  # no ":" or "?" in a folder's name
    assert f"shelved in {shelf}" in ran.stdout
    names = sorted(p.name for p in shelf.iterdir())
    assert names == sorted(
        [
            f"Harbour Lights.{fmt}",
            "Harbour Lights.epub",
            "cover.jpg",
            "desc.txt",
            "metadata.json",
            "metadata.opf",
            "reader.txt",
        ]
    )
    assert [p for p in library.rglob("*") if p.is_file() and p.parent != shelf] == []
    assert (shelf / "cover.jpg").read_bytes() == cover
    assert (shelf / f"Harbour Lights.{fmt}").read_bytes() == (tmp_path / f"out.{fmt}").read_bytes()
    about = json.loads((shelf / "metadata.json").read_text())
    described = "A keeper's year at the harbour light: storms, ships and the lamp ."
    assert (about["title"], about["authors"], about["narrators"]) == (
        "Harbour: Lights?",
        ["Ada Writer"],
        ["Tara (Lyre)"],
    )
    assert (about["publisher"], about["language"], about["description"]) == (
        "Lighthouse Press",
        "en",
        described,
    )
    assert (shelf / "desc.txt").read_text() == described
    assert (shelf / "reader.txt").read_text() == "Tara (Lyre)"
    package = ElementTree.parse(shelf / "metadata.opf").getroot()
    creators = {c.get(f"{OPF}role"): c.text for c in package.iter(f"{DC}creator")}
    assert creators == {"aut": "Ada Writer", "nrt": "Tara (Lyre)"}
    assert package.find(f".//{DC}title").text == "Harbour: Lights?"
    assert package.find(f".//{DC}publisher").text == "Lighthouse Press"
    # what a library server reads from the audio itself says the same
    audio = shelf / f"Harbour Lights.{fmt}"
    if fmt == "m4b":
        tags = mutagen.mp4.MP4(audio)
        assert tags.tags["©alb"] == ["Harbour: Lights?"] and tags.tags["©ART"] == ["Ada Writer"]
        assert tags.tags["©wrt"] == ["Tara (Lyre)"] and tags.tags["©cmt"] == [described]
        assert [(c.title, round(c.start, 2)) for c in tags.chapters] == [
            (c["title"], round(c["start"], 2)) for c in about["chapters"]
        ]
    else:
        tags = mutagen.mp3.MP3(audio).tags
        assert str(tags["TALB"]) == "Harbour: Lights?" and str(tags["TPE1"]) == "Ada Writer"
        assert str(tags["TCOM"]) == "Tara (Lyre)" and str(tags["TPUB"]) == "Lighthouse Press"
    with av.open(str(audio)) as container:
        found = container.chapters()
        read = [(c["metadata"].get("title"), float(c["start"] * c["time_base"])) for c in found]
        duration = container.duration / av.time_base
    assert [t for t, _ in read] == [c["title"] for c in about["chapters"]] == TITLES
    assert [s for _, s in read] == pytest.approx([c["start"] for c in about["chapters"]], abs=0.05)
    assert about["chapters"][-1]["end"] == pytest.approx(duration, abs=0.1)


def test_a_library_that_is_not_a_folder_is_refused(tmp_path, capsys):
    from cli.main import main

    code = main(["synth", "-", "-o", str(tmp_path / "x.mp3"), "--library", str(tmp_path / "no")])
    assert code == 2 and "--library" in capsys.readouterr().err
