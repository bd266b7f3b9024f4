"""Books as the toolchains people use write them (tests/fixtures/epubs: Pandoc's EPUB 3 and 2,
Sphinx, DocBook XSL, Calibre, and two quirky ones), each read back chapter by chapter against
its own table of contents: each entry, nested ones too, starts a chapter where it points (at
the top of a page or at an anchor inside it); what a listener cannot use (the title page, code,
footnotes and their markers, an empty index) is left out, and tables, lists and figures are
read as the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.text.documents import read_document

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "epubs"
CHAPTERS = ["Getting Started", "Installing the Lamp", "Keeping Watch", "Night Shifts", "Storms"]
# DocBook's navigation document numbers its chapters, not their sections
NUMBERED = ["1. Getting Started", "Installing the Lamp", "2. Keeping Watch", "Night Shifts"]
BOOKS = {
    "pandoc": CHAPTERS,
    "pandoc-epub2": CHAPTERS,
    "sphinx": CHAPTERS,
    "docbook": [*NUMBERED, "3. Storms"],
    "calibre": CHAPTERS,
    "quirky-mimetype": CHAPTERS,
    "quirky-malformed": CHAPTERS,
}
# Each chapter's words, in the order they are read
SAID = [
    [
        "The first lamp was lit in 1820.",
        "Ask the harbour master when something is unclear.",
        "Check the oil reservoir.",
        "Log the weather at dusk.",
    ],
    ["Unpack it on the lantern floor, never on the stairs."],
    [
        "The keeper watches the sea from dusk until dawn.",
        "Every passing ship is written in the logbook.",
        "Hour, Task.",
        "20:00, Trim the wick.",
        "The north tower seen from the harbour.",
    ],
    ["The relief keeper arrives at midnight with bread and coffee."],
    [
        "Storms arrive from the west in late autumn.",
        "No keeper leaves the tower until the wind drops.",
    ],
]
NOT_SAID = [
    "2024-01-01",  # the title page
    "urn:uuid",
    "sudo apt install",  # code
    "--calibrate",
    "Tides vary by season",  # a footnote, and its markers
    "dawn.1",
    "dawn. 1",
    "[1]",
    "↩",
    "Footnotes",  # Sphinx's label over its notes
    "Index",  # an index page with nothing in it
]


def chapters_of(name: str) -> tuple[list[str], list[str], list[str]]:
    document = read_document((FIXTURES / f"{name}.epub").read_bytes())
    titles, texts = [], []
    for part in document.text.split("# ")[1:]:
        title, _, body = part.partition("\n\n")
        titles.append(title.strip())
        texts.append(" ".join(body.split()))
    return titles, texts, list(document.warnings)


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_each_chapter_of_the_books_table_of_contents_is_read_in_order(name):
    titles, texts, _ = chapters_of(name)
    assert titles == BOOKS[name]
    for text, said in zip(texts, SAID, strict=True):
        at = [text.find(words) for words in said]
        assert -1 not in at, [w for w, i in zip(said, at, strict=True) if i < 0]
        assert at == sorted(at), f"{name}: read out of order"


@pytest.mark.parametrize("name", sorted(BOOKS))
def test_what_a_listener_cannot_use_is_left_out_and_the_warnings_say_what(name):
    titles, texts, warnings = chapters_of(name)
    whole = " ".join(titles + texts)
    assert [words for words in NOT_SAID if words in whole] == []
    assert "left out 1 code block (not read aloud)" in warnings
