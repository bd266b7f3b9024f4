"""The page's forms (read by ``api.uploads``, as the API's are) as the API's own requests, so
that a job submitted from the page is checked exactly as one sent to ``POST /v1/jobs`` is."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from api.errors import InvalidInput
from api.schemas import ChapterRedo, ChunkRedo, JobCreate
from api.uploads import Upload

Redo = TypeVar("Redo", ChapterRedo, ChunkRedo)


def job_request(upload: Upload) -> tuple[JobCreate, bytes | None, str | None]:
    """The submission form as the API's request, and the chosen file's bytes and name (None,
    None: the pasted text is the input)."""
    fields = upload.fields
    chosen: dict[str, Any] = {
        name: value
        for name in ("voice", "format", "preset", "title")
        if (value := str(fields.get(name, "")).strip())
    }
    text = "" if upload.filename is not None else str(fields.get("text", ""))
    if fields.get("read_along"):  # a ticked box
        chosen["mastering"] = {"read_along": True}
    try:
        body = JobCreate.model_validate(
            {"text": text, "lexicon": lexicon(fields.get("lexicon", "")), **chosen}
        )
    except ValidationError as exc:
        raise InvalidInput.of_fields(exc.errors()) from None
    if upload.filename is None:
        return body, None, None
    return body, upload.data, upload.filename


def redo_request(fields: dict[str, Any]) -> ChapterRedo:
    return _redo(ChapterRedo, fields)


def chunk_redo_request(fields: dict[str, Any]) -> ChunkRedo:
    return _redo(ChunkRedo, fields)


def _redo(kind: type[Redo], fields: dict[str, Any]) -> Redo:
    """A redo form's text and voice, each left out where it is blank (the same as before)."""
    try:
        return kind.model_validate(
            {name: v for name in ("text", "voice") if (v := str(fields.get(name, "")).strip())}
        )
    except ValidationError as exc:
        raise InvalidInput.of_fields(exc.errors()) from None


def lexicon(lines: str) -> dict[str, str]:
    """``word = respelling``, one a line; blank lines are skipped."""
    entries = {}
    for number, line in enumerate(str(lines).splitlines(), 1):
        if not line.strip():
            continue
        word, equals, respelling = line.partition("=")
        if not equals or not word.strip() or not respelling.strip():
            raise InvalidInput(f"lexicon line {number}: write it as word = respelling")
        entries[word.strip()] = respelling.strip()
    return entries
