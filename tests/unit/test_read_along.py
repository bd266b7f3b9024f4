"""The sentences spoken found in a book's pages and given ids (``shared.text.epub_marks``), and
the container a read-along EPUB is written as (``shared.text.read_along``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from lxml import etree

from shared.text.epub_marks import mark_sentences, parse_page
from shared.text.read_along import Package, clock, write

XHTML = "http://www.w3.org/1999/xhtml"


def page(body: str) -> etree._Element:
    return parse_page(
        f'<html xmlns="{XHTML}" xmlns:epub="http://www.idpf.org/2007/ops"><head><title>t'
        f"</title></head><body>{body}</body></html>".encode()
    )


def spans(root: etree._Element) -> dict[str, str]:
    return {
        e.get("id"): "".join(e.itertext())
        for e in root.iter(f"{{{XHTML}}}span")
        if (e.get("id") or "").startswith("lyre-")
    }


def test_each_sentence_gets_a_span_and_an_inline_element_across_a_cut_is_split():
    root = page('<p>He said <em id="e" class="x">hi. Then</em> left. <a href="#n">Go</a>.</p>')
    found = mark_sentences({"p.xhtml": root}, ["He said hi.", "Then left.", "Go."])
    assert [place[1] for place in found.places] == ["lyre-s1", "lyre-s2", "lyre-s3"]
    # a sentence's closing punctuation is taken where it is in the text its last letter is in
    assert spans(root) == {"lyre-s1": "He said hi.", "lyre-s2": "Then left.", "lyre-s3": "Go"}
    ems = list(root.iter(f"{{{XHTML}}}em"))
    assert ["".join(e.itertext()) for e in ems] == ["hi.", " ", "Then"]
    assert [e.get("id") for e in ems] == ["e", None, None]  # the id once, the class on each
    assert all(e.get("class") == "x" for e in ems)
    assert "".join(root.find(f".//{{{XHTML}}}p").itertext()) == "He said hi. Then left. Go."


def test_what_is_not_read_is_passed_over_and_a_table_row_takes_the_rows_id():
    root = page(
        '<p>The keeper watched.<sup><a href="#fn1" epub:type="noteref">1</a></sup> Ships '
        "passed.</p><pre>sudo lamp</pre><table><tr><td>20:00</td><td>Trim the wick</td></tr>"
        '</table><aside epub:type="footnote" id="fn1">The keeper watched twice.</aside>'
    )
    said = ["The keeper watched.", "Ships passed.", "20:00, Trim the wick."]
    found = mark_sentences({"p.xhtml": root}, said)
    assert spans(root) == {"lyre-s1": "The keeper watched.", "lyre-s2": "Ships passed."}
    row = root.find(f".//{{{XHTML}}}tr")
    assert found.places[2] == ("p.xhtml", row.get("id"))


def test_a_sentence_not_in_the_pages_is_left_without_a_place_and_the_next_is_found():
    root = page('<p id="lyre-s1">A figure.</p><p>The next one. And more.</p>')
    found = mark_sentences(
        {"a.xhtml": root}, ["A figure.", "Alt text never written.", "The next one."]
    )
    assert found.places[1] is None
    assert found.places[0] == ("a.xhtml", "lyre-s1x")  # not the id the page already had
    assert found.places[2] == ("a.xhtml", "lyre-s3")


def test_html_entities_and_a_page_that_is_not_well_formed_are_read():
    root = parse_page(
        f'<html xmlns="{XHTML}"><body><p>Caf&eacute;&nbsp;noir. <p>Two</p></body></html>'.encode()
    )
    found = mark_sentences({"m.xhtml": root}, ["Café noir.", "Two"])
    assert all(found.places)
    paragraphs = root.findall(f".//{{{XHTML}}}p")
    assert len(paragraphs) == 2 and paragraphs[1].getparent().tag == f"{{{XHTML}}}body"


def test_sentences_are_found_across_pages_in_reading_order():
    one, two = page("<p>Same words.</p>"), page("<p>Other words. Same words.</p>")
    found = mark_sentences({"1.xhtml": one, "2.xhtml": two}, ["Other words.", "Same words."])
    assert [place[0] for place in found.places] == ["2.xhtml", "2.xhtml"]


def test_the_container_starts_with_its_stored_mimetype_and_is_the_same_each_time(tmp_path: Path):
    audio = tmp_path / "a.m4a"
    audio.write_bytes(b"\0" * 5000)
    made = []
    for n in (1, 2):
        opf = etree.fromstring(b'<package xmlns="http://www.idpf.org/2007/opf" version="3.0"/>')
        package = Package("EPUB/package.opf", opf, {"EPUB/audio/a.m4a": audio})
        write(package, tmp_path / f"{n}.epub")
        made.append((tmp_path / f"{n}.epub").read_bytes())
    assert made[0] == made[1]
    first = zipfile.ZipFile(tmp_path / "1.epub").infolist()[0]
    assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
    assert made[0][30:38] == b"mimetype" and made[0][38:58] == b"application/epub+zip"
    assert clock(3725.5) == "1:02:05.500"


def test_sentences_that_touch_do_not_overlap_and_one_across_pages_is_left():
    root = page('<p>"Go," he said."Yes." Then the page</p>')
    two = page("<p>ended. Last words.</p>")
    said = ['"Go," he said.', '"Yes."', "Then the page ended.", "Last words."]
    found = mark_sentences({"a.xhtml": root, "b.xhtml": two}, said)
    assert spans(root) == {"lyre-s1": '"Go," he said."', "lyre-s2": 'Yes."'}
    assert found.places[2] is None and found.places[3] == ("b.xhtml", "lyre-s4")


def test_a_figure_read_by_its_alt_text_takes_the_figures_id():
    root = page(
        '<p>Before it.</p><figure><img src="l.png" alt="A lighthouse at dusk"/></figure>'
        "<p>After it.</p>"
    )
    found = mark_sentences({"f.xhtml": root}, ["Before it.", "A lighthouse at dusk.", "After it."])
    figure = root.find(f".//{{{XHTML}}}figure")
    assert found.places[1] == ("f.xhtml", figure.get("id"))
    assert spans(root) == {"lyre-s1": "Before it.", "lyre-s3": "After it."}


def test_an_href_is_relative_to_its_document_and_percent_encoded():
    opf = etree.fromstring(b'<package xmlns="http://www.idpf.org/2007/opf" version="3.0"/>')
    package = Package("OEBPS/content.opf", opf)
    assert package.href("OEBPS/text/ch 1.xhtml", "OEBPS/overlays/p.smil") == "../text/ch%201.xhtml"
    assert package.href("OEBPS/audio/a.m4a") == "audio/a.m4a"
    assert Package("content.opf", opf).href(Package("content.opf", opf).inside("a b.css")) == (
        "a%20b.css"
    )


def test_a_run_keeps_its_id_unless_it_asks_for_a_read_along():
    """Embedded mode's job id (its chunks' seeds, where to resume) is what it was before a
    read-along could be asked for; asking for one is another making, another id."""
    from shared.farm.intake import Submission, take_in
    from shared.infra.settings import Settings

    settings = Settings()
    plain = take_in(settings, Submission(data=b"Hello there. A test.")).content_id()
    assert str(plain) == "b979531f-d318-e5bb-8238-9adddab81919"  # as the code before gave it
    asked = Submission(data=b"Hello there. A test.", choices={"read_along": True})
    assert take_in(settings, asked).content_id() != plain
