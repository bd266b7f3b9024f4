"""Reading what a request sends in: one reader for ``POST /v1/jobs`` (JSON or a multipart form)
and the web page's forms, with one policy and the intake's messages (``shared.farm.intake``).

- A request declared larger than the upload limit (and a form's other fields) is refused before
  any of it is read; a body sent without a length is refused once it grows past it.
- A file is read up to the upload limit; the text, in a field or in the file, is checked by the
  intake, as every other way in checks it.
- A file part with neither a name nor bytes is no file (a browser's form with none chosen).
- A body that cannot be parsed is refused with the parser's reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.errors import InvalidInput, RequestUnreadable, refusals
from shared.farm.intake import check_size, too_large
from shared.infra.settings import FarmSettings

FORM_SLACK = 64 * 1024  # a form's fields beside its file, a JSON body's beside its text


@dataclass(frozen=True)
class Upload:
    fields: dict[str, str]  # the form's text fields
    data: bytes  # the file's bytes
    filename: str | None  # None: no file was sent


async def read_form(request: Request, settings: FarmSettings) -> Upload:
    """A form's fields and its file ``file``, if one was sent."""
    _refuse_declared(request, settings)
    try:
        # a text field may be as large as the request; the intake then checks the text's size
        async with request.form(max_part_size=settings.max_upload_bytes + FORM_SLACK) as form:
            fields = {name: value for name, value in form.items() if isinstance(value, str)}
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not (upload.filename or upload.size):
                return Upload(fields, b"", None)
            data = await upload.read(settings.max_upload_bytes + 1)
    except HTTPException as exc:  # Starlette's refusal of a form it could not parse
        raise RequestUnreadable(f"the form could not be read: {exc.detail}") from None
    with refusals():
        check_size("the file", len(data), settings.max_upload_bytes)
    return Upload(fields, data, upload.filename or "")


async def read_json(request: Request, settings: FarmSettings) -> Any:
    """A JSON body, read no further than the upload limit allows."""
    _refuse_declared(request, settings)
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > settings.max_upload_bytes + FORM_SLACK:
            with refusals():
                raise too_large("the request", settings.max_upload_bytes)
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InvalidInput("the body is not valid JSON: it is not UTF-8") from None


def _refuse_declared(request: Request, settings: FarmSettings) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > settings.max_upload_bytes + FORM_SLACK:
        with refusals():
            raise too_large("the request", settings.max_upload_bytes)
