"""What the fuzzer sends as a job's file: the media types the OpenAPI document lists for it
(``api/routes/jobs.py``), each generated as a file of that type, so that the cases reach the
reading of a text or a book rather than a refusal of bytes that are neither. Loaded by
schemathesis through ``SCHEMATHESIS_HOOKS`` (``tests/e2e/test_contract.py``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import strategies as st

from tests.books import make_epub, nested_book, three_chapter_book

# any characters a text may hold (a NUL makes bytes binary data, not text)
_WORDS = st.text(st.characters(exclude_characters="\0"), min_size=1, max_size=400)
_SENTENCES = st.sampled_from(["Hello there.", "The lighthouse keeper slept. Then it rained."])
_TEXT = st.one_of(_WORDS, _SENTENCES)


def _epubs() -> list[bytes]:
    with tempfile.TemporaryDirectory() as folder:
        return [
            make_epub(Path(folder) / f"{version}-{i}.epub", book, version=version).read_bytes()
            for i, book in enumerate((three_chapter_book(), nested_book()))
            for version in (2, 3)
        ]


schemathesis.openapi.media_type("text/plain", _TEXT.map(str.encode))
schemathesis.openapi.media_type("text/markdown", _TEXT.map(lambda t: f"# {t}\n\n{t}".encode()))
schemathesis.openapi.media_type(
    "text/html", _TEXT.map(lambda t: f"<html><body><p>{t}</p></body></html>".encode())
)
schemathesis.openapi.media_type("application/epub+zip", st.sampled_from(_epubs()))
