from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.text.chunking import Boundary, chunk_text
from shared.text.normalize import normalize_text
from shared.text.spoken import spoken_size

BOOK = """Intro before any heading.

# Chapter One

It was a dark night. Mr. Smith walked in. <laugh> He said <shout> hello <crying>!

A long sentence with a clause, another clause; and a third clause that goes on and on until \
it is far too long to fit in one small chunk of text at all.

* * *

tara: Welcome back to the show.
leo: Thanks for having me.
And more from leo.

CHAPTER 2

Back to the narrator.
"""


def test_chunks_reassemble_to_the_normalised_text():
    result = chunk_text(BOOK, max_chars=60)
    assert "".join(c.source for c in result.spans) == result.normalized
    assert [c.index for c in result.spans] == list(range(len(result.spans)))


def test_chapters_come_from_markdown_headings_and_chapter_lines():
    result = chunk_text(BOOK, max_chars=60)
    assert result.chapters == ["", "Chapter One", "CHAPTER 2"]
    headings = [c for c in result.spans if c.boundary is Boundary.CHAPTER]
    assert [c.text for c in headings] == ["Chapter One", "CHAPTER 2"]
    assert headings[1].voice is None  # a speaker label does not outlive its chapter
    assert result.spans[-1].chapter == 2


def test_boundaries_mark_paragraphs_sentences_and_speaker_turns():
    chunks = chunk_text(BOOK, max_chars=60).spans
    kinds = {c.text: c.boundary for c in chunks}
    assert chunks[0].boundary is Boundary.START
    assert kinds["It was a dark night. Mr. Smith walked in."] is Boundary.PARAGRAPH
    assert kinds["<laugh> He said hello!"] is Boundary.SENTENCE
    assert kinds["Welcome back to the show."] is Boundary.SPEAKER
    voices = {c.text: c.voice for c in chunks}
    assert voices["Thanks for having me. And more from leo."] == "leo"
    assert voices["Back to the narrator."] is None


def test_long_sentences_are_cut_at_clauses_before_words():
    chunks = chunk_text(BOOK, max_chars=60).spans
    cut = [c for c in chunks if c.boundary in (Boundary.CLAUSE, Boundary.WORD)]
    assert cut and cut[0].boundary is Boundary.CLAUSE
    assert all(spoken_size(c.text) <= 60 for c in chunks)


def test_unvoiceable_tags_are_removed_and_counted():
    result = chunk_text(BOOK, max_chars=60)
    spoken = " ".join(c.text for c in result.spans)
    assert "<laugh>" in spoken and "<shout>" not in spoken and "<crying>" not in spoken
    assert result.removed_tags == {"shout": 1, "crying": 1}
    assert len(result.warnings) == 2


def test_scene_break_is_folded_into_a_neighbour():
    result = chunk_text("One.\n\n* * *\n\nTwo.")
    assert [c.text for c in result.spans] == ["One.", "Two."]
    assert result.spans[0].source == "One.\n\n* * *\n\n"


def test_normalisation():
    raw = "\ufeffA\u00a0b\tc\r\n\r\n\r\n\r\nd\u200b e  \n"
    assert normalize_text(raw) == "A b c\n\nd e"
    assert normalize_text("ﬁne") == "fine"  # NFKC


def test_abbreviations_and_initials_do_not_end_sentences():
    text = "Dr. J. R. Smith met Mrs. Jones. They talked. " * 3
    chunks = chunk_text(text, max_chars=40).spans
    assert all(not c.text.endswith(("Dr.", "J.", "R.", "Mrs.")) for c in chunks)


def test_a_word_longer_than_the_limit_stays_whole():
    word = "x" * 100
    chunks = chunk_text(f"Short start. {word} end.", max_chars=40).spans
    assert any(word in c.text for c in chunks)


_ALPHABET = st.sampled_from(
    [*list("abcdefghij XYZ.,;:!?'\"-—\n\t#*<>"), "<laugh>", "<shout>", "tara: ", "\n\n", "# ", "é"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=400).map("".join), st.integers(40, 120))
def test_every_character_is_accounted_for(raw: str, max_chars: int):
    result = chunk_text(raw, max_chars=max_chars)
    normalized = normalize_text(raw)
    assert result.normalized == normalized
    if result.spans:
        assert "".join(c.source for c in result.spans) == normalized
    else:  # nothing speakable at all: no words besides tags and speaker labels
        unlabelled = re.sub(r"(?m)^(tara|leah|jess|leo|dan|mia|zac|zoe): ", "", normalized)
        assert not any(ch.isalnum() for ch in re.sub(r"<\w+>", "", unlabelled))
    for chunk in result.spans:
        assert chunk.text and any(ch.isalnum() for ch in chunk.text)
        words = chunk.text.split()
        if len(words) > 1:
            assert spoken_size(chunk.text) <= max_chars
    for before, after in zip(result.spans, result.spans[1:], strict=False):
        # never inside a word: every cut falls on whitespace
        assert before.source[-1].isspace() or after.source[0].isspace()


def test_a_ramp_makes_the_first_spans_short_and_each_next_up_to_twice_as_long():
    text = " ".join(f"Sentence number {i} is here and says a few words." for i in range(40))
    plain = chunk_text(text, 400)
    ramped = chunk_text(text, 400, ramp_chars=100)
    assert "".join(span.source for span in ramped.spans) == ramped.normalized == plain.normalized
    lengths = [spoken_size(span.text) for span in ramped.spans]
    assert lengths[0] <= 100 < lengths[1] <= 200 < lengths[2] <= 400
    assert max(lengths) <= 400 and len(ramped.spans) > len(plain.spans)
    # a first sentence longer than the ramp is its first span whole, not cut for it
    long_first = "A first sentence that is a good deal longer than the ramp allows. " + text
    assert chunk_text(long_first, 400, ramp_chars=20).spans[0].text.startswith("A first")
    assert len(chunk_text(long_first, 400, ramp_chars=20).spans[0].text) == 65
