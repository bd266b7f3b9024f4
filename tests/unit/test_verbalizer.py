"""What the engine is asked to say: the test set as careful readers say it, the lexicon over
the rules, and the author's words kept for captions and titles."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.farm.intake import Submission, take_in
from shared.infra.settings import get_settings
from shared.text import semiotic
from shared.text.chunking import chunk_text
from shared.text.lexicon import Lexicon
from shared.text.normalize import normalize_text
from shared.text.semiotic import say_forms
from shared.text.spoken import spoken_size
from shared.text.verbalizer import verbalize

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "speech.md"


def _bench_text():
    """bench/text.py, whose test set reader and scoring this test shares."""
    spec = importlib.util.spec_from_file_location("bench_text", ROOT / "bench" / "text.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules["bench_text"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _documented_misses() -> set[str]:
    """The sentences docs/speech.md lists as said otherwise than a careful reader would."""
    section = DOCS.read_text().split("## Misses", 1)[1].split("\n## ", 1)[0]
    return {match.group(1) for match in re.finditer(r"^\| `(.+?)` \|", section, re.MULTILINE)}


def test_the_test_set_is_said_as_careful_readers_say_it_and_the_docs_list_the_misses():
    bench = _bench_text()
    cases = bench.load_cases()
    assert len(cases) >= 150
    missed = bench.misses(cases, [verbalize(normalize_text(case.written)) for case in cases])
    assert len(missed) <= 0.05 * len(cases), [case.written for case, _ in missed]
    assert {case.written for case, _ in missed} == _documented_misses()


# Pieces of written forms and of the words around them, for sentences no test set holds.
_PIECES = [
    "$3.50", "£1,200", "5 million", "minus", "5°C", "-4", "September", "1st,", "2020",
    "jane.doe@example.com", "https://www.example.org/a?b=1", "(555) 123-4567", "+44 20 7946",
    "10:30", "a.m.", "3/4", "1 1/2", "cups", "12%", "per cent", "the", "of", "May", "1990s",
    "'90s", "5'11\"", "km", "3-5", "1–3", "&", "#1", "R&D", "2nd", "No.", "9", "x", "Dr.",
    "Henry VIII", ",", ".", "e.g.", "50p", "99¢", "1999-12-31", "12/31/1999", "7", "kg",
]  # fmt: skip


@given(st.lists(st.sampled_from(_PIECES), max_size=14), st.lists(st.sampled_from(" ,\n")))
def test_forms_are_said_where_the_whole_pattern_would_say_them(pieces, separators):
    """say_forms tries its pattern only near clues; tried everywhere, it says the same."""
    gaps = [*separators, *" " * len(pieces)]
    text = "".join(piece + gap for piece, gap in zip(pieces, gaps, strict=False))
    assert say_forms(text) == semiotic._PATTERN.sub(semiotic._say, text)


def test_the_test_set_says_the_same_as_the_whole_pattern():
    for case in _bench_text().load_cases():
        text = normalize_text(case.written)
        assert say_forms(text) == semiotic._PATTERN.sub(semiotic._say, text)


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("Meet me on Fleet St. at noon.", "Meet me on Fleet Street at noon."),
        ("St. Paul's was full.", "Saint Paul's was full."),
        ("She lived on Mulholland Dr.", "She lived on Mulholland Drive."),
        ("Then Dr. Watson came.", "Then Doctor Watson came."),
        ("I said No. Then No. 9 came.", "I said No. Then number nine came."),
        ("Charles I lost; I did not.", "Charles the first lost; I did not."),
        ("It cost $0.99, or 2½ cups.", "It cost ninety-nine cents, or two and a half cups."),
        ("A 5 in a row.", "A five in a row."),
        ("Ring +44 20 7946 0958.",
         "Ring plus four four, two oh, seven nine four six, oh nine five eight."),
    ],
)  # fmt: skip
def test_context_decides(written, said):
    assert verbalize(chunk_text(written).spans[0].text) == said


def test_the_lexicon_wins_over_the_rules_and_its_words_are_names_to_them():
    lexicon = Lexicon({"C-3PO": "See-Threepio", "siobhan": "shiv-awn"})
    said = verbalize("C-3PO met Dr. Siobhan at 3:45 p.m.", lexicon)
    assert said == "See-Threepio met Doctor Shiv-awn at three forty-five p.m."
    assert lexicon.applied == {"C-3PO": 1, "siobhan": 1}
    # an author's private-use character (an icon font's) is not taken for a held word
    assert verbalize("Siobhan \ue005 waved.", lexicon) == "Shiv-awn waved."


def test_captions_titles_and_every_engine_keep_the_authors_words_and_hear_the_same():
    book = b"# Chapter XIV\n\nOn 4 July 1776 Dr. Watson paid $3.50.\n\nThe end."
    previews = [
        take_in(get_settings().model_copy(update={"engine": engine}), Submission(data=book))
        for engine in ("espeak", "simulated", "orpheus")
    ]
    assert [intake.request.engine for intake in previews] == ["espeak", "simulated", "orpheus"]
    previews = [intake.preview() for intake in previews]
    assert [line.said for line in previews[0]] == [line.said for line in previews[1]]
    assert [line.said for line in previews[0]] == [line.said for line in previews[2]]
    lines = previews[0]
    assert lines[0].chapter_title == "Chapter XIV"
    assert lines[0].written.startswith("Chapter XIV") and lines[0].said.startswith(
        "Chapter fourteen"
    )
    paid = next(line for line in lines if "Watson" in line.written)
    assert paid.written == "On 4 July 1776 Dr. Watson paid $3.50."
    assert paid.said == (
        "On the fourth of July, seventeen seventy-six Doctor Watson paid three dollars and"
        " fifty cents."
    )


def test_chunks_are_measured_by_what_is_said():
    text = " ".join(f"In {1800 + i} they paid ${i},{i:03d}.{i % 100:02d}." for i in range(60))
    spans = chunk_text(text, max_chars=200).spans
    assert all(len(verbalize(span.text)) <= 200 for span in spans)
    assert all(spoken_size(span.text) <= 200 for span in spans)
    assert len(spans) > len(text) // 200 + 1  # more chunks than the written length would need
