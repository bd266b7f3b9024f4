"""A tenant's jobs: submit, list, poll, cancel, delete, download, history, a chapter's redo
(a chunk's: ``api.routes.chunks``)."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api import uploads
from api.deps import FarmDep, KeyDep, ReadersDep, TenantDep
from api.errors import (
    AudioNotReady,
    ChapterNotFound,
    FilesExpired,
    IdempotencyConflict,
    InputTooLarge,
    InvalidInput,
    JobNotCancellable,
    JobNotFound,
    JobNotRedoable,
    RequestUnreadable,
)
from api.problems import KEYED, responses
from api.schemas import (
    ChapterRedo,
    EventPage,
    JobCreate,
    JobOut,
    JobPage,
    PreviewOut,
    WebhookDeliveryOut,
)
from api.services import history, jobs, polls
from api.services.jobs import CURSOR_PATTERN
from shared.farm.states import JobStatus
from shared.infra.settings import FarmSettings

router = APIRouter()

_STATUS = Query(default=None, description="Only jobs in this status")
MAX_INT = 2**31 - 1  # job_event.id and chunk.chapter are INTEGERs: larger is no place in them
_CURSOR = Query(
    default=None,
    pattern=CURSOR_PATTERN,
    description="Where the page starts: the next_cursor of the page before",
)
OF_A_JOB = (*KEYED, JobNotFound, InvalidInput)  # a route of /jobs/{job_id}
# What a job's file may be (shared.text.documents reads each by its content, not by its type)
INPUT_MEDIA_TYPES = (
    "text/plain",
    "text/markdown",
    "text/html",
    "application/xhtml+xml",
    "application/epub+zip",
)
_JOB_BODY = {  # read by the route itself, in either encoding
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "description": "The input as the file `file`, JobCreate's other fields as form "
                "fields (metadata, lexicon and mastering as JSON)",
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "A text (UTF-8: plain, Markdown or HTML) or an EPUB, "
                        "told apart by its content; anything else is refused",
                    }
                },
                "required": ["file"],
            },
            "encoding": {"file": {"contentType": ", ".join(INPUT_MEDIA_TYPES)}},
        },
    },
}


async def _read_body(
    request: Request, settings: FarmSettings
) -> tuple[JobCreate, bytes | None, str | None]:
    """A JSON body, or multipart/form-data with the input as the file ``file`` and the rest as
    fields; the uploaded file's bytes and name (None, None: the body's text is the input)."""
    upload = None
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        upload = await uploads.read_form(request, settings)
        fields: Any = _form_fields(upload)
    else:
        fields = await uploads.read_json(request, settings)
    if not isinstance(fields, dict):
        raise InvalidInput("the body must be a JSON object")
    try:
        # JSON's types are as the schema says (no true for 1, no "1" for 1); a form's fields
        # are all strings, read as their fields' types
        body = JobCreate.model_validate(fields, strict=upload is None)
    except ValidationError as exc:
        raise InvalidInput.of_fields(exc.errors(), prefix=("body",)) from None
    if upload is None or upload.filename is None:
        return body, None, None
    return body, upload.data, upload.filename


def _form_fields(upload: uploads.Upload) -> dict[str, Any]:
    fields: dict[str, Any] = dict(upload.fields)
    for name in ("metadata", "lexicon", "mastering"):  # JSON objects in form fields
        if name in fields:
            try:
                fields[name] = json.loads(fields[name])
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"{name} is not valid JSON: {exc.msg}") from None
    if upload.filename is not None and "text" not in fields:
        fields["text"] = ""  # the file is the input
    return fields


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobOut,
    responses=responses(
        *KEYED, IdempotencyConflict, InputTooLarge, InvalidInput, RequestUnreadable
    ),
    openapi_extra={"requestBody": _JOB_BODY},
)
async def create_job(
    request: Request,
    response: Response,
    farm: FarmDep,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> JobOut:
    body, data, filename = await _read_body(request, farm.settings.farm)
    job = await run_in_threadpool(jobs.submit, farm, tenant, body, idempotency_key, data, filename)
    response.headers["Location"] = request.app.url_path_for("get_job", job_id=str(job.id))
    return jobs.job_out(farm, job)


@router.post(
    "/previews",
    response_model=PreviewOut,
    responses=responses(*KEYED, InputTooLarge, InvalidInput, RequestUnreadable),
    openapi_extra={"requestBody": _JOB_BODY},
)
async def preview_job(request: Request, farm: FarmDep, tenant: TenantDep) -> PreviewOut:
    """What a job of this body would have the engine say, chunk by chunk (after the text is
    read and the lexicons applied), to check before making it: no job is made, no characters
    counted."""
    body, data, filename = await _read_body(request, farm.settings.farm)
    return await run_in_threadpool(jobs.preview, farm, tenant, body, data, filename)


@router.get("/jobs", response_model=JobPage, responses=responses(*KEYED, InvalidInput))
def list_jobs(
    farm: FarmDep,
    tenant: TenantDep,
    status: JobStatus | None = _STATUS,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = _CURSOR,
) -> JobPage:
    with farm.sessions() as session:
        found, next_cursor = jobs.list_jobs(tenant, status, limit, cursor, session=session)
        items = jobs.jobs_out(farm, found, session)
    return JobPage(items=items, next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=responses(*OF_A_JOB))
async def get_job(job_id: uuid.UUID, farm: FarmDep, key: KeyDep, readers: ReadersDep) -> Response:
    # what clients waiting on a job repeat: on the event loop, one connection, one statement,
    # the JSON encoded once (returned as bytes, it is not validated again)
    body = await polls.read_job(farm, readers, key, job_id)
    return Response(body, media_type="application/json")


def job_now(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    """The job as a route that changed it answers (cancel, redo)."""
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
        return jobs.job_out(farm, job, session)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=responses(*OF_A_JOB, JobNotCancellable),
)
def cancel_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    jobs.cancel(farm, tenant, job_id)
    return job_now(job_id, farm, tenant)


@router.delete("/jobs/{job_id}", status_code=204, responses=responses(*OF_A_JOB))
def delete_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> Response:
    jobs.delete_job(farm, tenant, job_id)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/audio",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {"description": "To the programme's file (a presigned address)"},
        **responses(*OF_A_JOB, AudioNotReady, FilesExpired),
    },
)
def job_audio(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> RedirectResponse:
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
    return RedirectResponse(jobs.audio_url(farm, job), status_code=307)


@router.get(
    "/jobs/{job_id}/library.zip",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The book as a library server shelves it: Author/Title/ with the "
            "audio, the cover, the read-along EPUB if made, metadata.json, metadata.opf, "
            "desc.txt and reader.txt (a zip, streamed from the object store)",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **responses(*OF_A_JOB, AudioNotReady, FilesExpired),
    },
)
def job_library(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> StreamingResponse:
    return jobs.library_zip(farm, tenant, job_id)


@router.get(
    "/jobs/{job_id}/webhooks",
    response_model=list[WebhookDeliveryOut],
    responses=responses(*OF_A_JOB),
)
def job_webhooks(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> list[WebhookDeliveryOut]:
    with farm.sessions() as session:
        return history.webhook_history(tenant, job_id, session=session)


@router.get("/jobs/{job_id}/events", response_model=EventPage, responses=responses(*OF_A_JOB))
def job_events(
    job_id: uuid.UUID,
    farm: FarmDep,
    tenant: TenantDep,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_INT, description="Events after this id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EventPage:
    """The job's history: every change of the job's state and of its chunks' states."""
    with farm.sessions() as session:
        return history.job_events(tenant, job_id, after, limit, session=session)


@router.post(
    "/jobs/{job_id}/chapters/{number}/regenerate",
    status_code=202,
    response_model=JobOut,
    responses=responses(
        *OF_A_JOB, ChapterNotFound, FilesExpired, JobNotRedoable, RequestUnreadable
    ),
)
def regenerate_chapter(
    job_id: uuid.UUID,
    number: Annotated[int, Path(ge=1, le=MAX_INT, description="The chapter's number, from 1")],
    body: ChapterRedo,
    farm: FarmDep,
    tenant: TenantDep,
) -> JobOut:
    """Make one chapter again (corrected text, or another voice), then the book's files, as
    the job's next version; the current files stay listed until the new ones are made."""
    jobs.redo(farm, tenant, job_id, number - 1, body)
    return job_now(job_id, farm, tenant)
