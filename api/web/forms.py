"""The page's forms read into the API's own requests, so that a job submitted from the page is
checked exactly as one sent to ``POST /v1/jobs`` is."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from api.errors import InputTooLarge, InvalidInput
from api.schemas import ChapterRedo, JobCreate
from shared.infra.settings import FarmSettings

_FORM_SLACK = 64 * 1024  # the form's other fields, beside the file


async def read_form(request: Request, settings: FarmSettings) -> tuple[dict[str, Any], bytes, str]:
    """The form's text fields, and the uploaded file's bytes and name (empty when none was
    chosen). A request declared larger than the upload limit is refused before it is read."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FORM_SLACK:
        raise InputTooLarge(f"the file is larger than this farm accepts ({_size(limit)})")
    try:
        async with request.form(max_part_size=settings.max_input_bytes + _FORM_SLACK) as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            upload = form.get("file")
            data, name = b"", ""
            if isinstance(upload, UploadFile) and upload.filename:
                data, name = await upload.read(limit + 1), upload.filename
    except (MultiPartException, HTTPException) as exc:
        raise InputTooLarge(f"the form could not be read: {getattr(exc, 'detail', exc)}") from None
    if len(data) > limit:
        raise InputTooLarge(f"the file is larger than this farm accepts ({_size(limit)})")
    return fields, data, name


def job_request(
    fields: dict[str, Any], data: bytes, settings: FarmSettings
) -> tuple[JobCreate, bytes | None]:
    """The submission form as the API's request, and the uploaded file's bytes if one was
    chosen (else the pasted text is the input)."""
    text = str(fields.get("text", ""))
    if not data and not text.strip():
        raise InvalidInput("paste a text or choose a file to read")
    if not data and len(text.encode()) > settings.max_input_bytes:
        raise InputTooLarge(f"the text is larger than this farm accepts ({_size(len(text))})")
    chosen = {
        name: value
        for name in ("voice", "format", "preset", "title")
        if (value := str(fields.get(name, "")).strip())
    }
    try:
        body = JobCreate.model_validate(
            {"text": "" if data else text, "lexicon": lexicon(fields.get("lexicon", "")), **chosen}
        )
    except ValidationError as exc:
        raise InvalidInput(_reasons(exc)) from None
    return body, (data or None)


def redo_request(fields: dict[str, Any]) -> ChapterRedo:
    try:
        return ChapterRedo.model_validate(
            {name: v for name in ("text", "voice") if (v := str(fields.get(name, "")).strip())}
        )
    except ValidationError as exc:
        raise InvalidInput(_reasons(exc)) from None


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


def _reasons(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in exc.errors()
    )


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"
