"""/v1 routes: parse, call a service, shape the answer."""

from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

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
    LexiconIn,
    LimitsOut,
    VoiceOut,
    WebhookDeliveryOut,
    WebhookSecretOut,
)
from api.services import history, jobs, polls
from api.services.jobs import CURSOR_PATTERN
from shared.farm import tenants
from shared.farm.states import JobStatus
from shared.infra.settings import FarmSettings, SpeakingEngine
from shared.text.voices import VOICES

router = APIRouter(prefix="/v1")

_STATUS = Query(default=None, description="Only jobs in this status")
MAX_INT = 2**31 - 1  # job_event.id and chunk.chapter are INTEGERs: larger is no place in them
_CURSOR = Query(
    default=None,
    pattern=CURSOR_PATTERN,
    description="Where the page starts: the next_cursor of the page before",
)
_OF_A_JOB = (*KEYED, JobNotFound, InvalidInput)  # a route of /jobs/{job_id}
_JOB_BODY = {  # read by the route itself, in either encoding
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "description": "The input as the file `file` (a text or an EPUB), JobCreate's "
                "other fields as form fields (metadata, lexicon and mastering as JSON)",
                "properties": {"file": {"type": "string", "format": "binary"}},
                "required": ["file"],
            }
        },
    },
}


async def _read_body(
    request: Request, settings: FarmSettings
) -> tuple[JobCreate, bytes, str | None]:
    """A JSON body, or multipart/form-data with the input as the file ``file`` and the rest as
    fields; the input's bytes (the text, or the uploaded file) are read by content later."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise InputTooLarge(f"the request is larger than {limit} bytes")
    form = request.headers.get("content-type", "").startswith("multipart/form-data")
    data, filename = b"", None
    try:
        if form:
            fields, data, filename = await _form_fields(request, limit)
        else:
            fields = json.loads(await request.body())
        if not isinstance(fields, dict):
            raise InvalidInput("the body must be a JSON object")
        if data and "text" not in fields:
            fields["text"] = ""  # the file is the input
        # JSON's types are as the schema says (no true for 1, no "1" for 1); a form's fields
        # are all strings, read as their fields' types
        body = JobCreate.model_validate(fields, strict=not form)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InvalidInput("the body is not valid JSON: it is not UTF-8") from None
    except ValidationError as exc:
        raise InvalidInput.of_fields(exc.errors(), prefix=("body",)) from None
    if not data:
        data = body.text.encode()
        if len(data) > settings.max_input_bytes:
            raise InputTooLarge(f"the text is larger than {settings.max_input_bytes} bytes")
    return body, data, filename


async def _form_fields(request: Request, limit: int) -> tuple[dict[str, Any], bytes, str | None]:
    async with request.form() as form:
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload, data, filename = form.get("file"), b"", None
        if upload is not None and not isinstance(upload, str):
            filename = upload.filename
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise InputTooLarge(f"the file is larger than {limit} bytes")
            if not data:
                raise InvalidInput("the file is empty")
    for name in ("metadata", "lexicon", "mastering"):  # JSON objects in form fields
        if name in fields:
            fields[name] = json.loads(fields[name])
    return fields, data, filename


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
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return jobs.job_out(farm, job)


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


@router.get("/jobs/{job_id}", response_model=JobOut, responses=responses(*_OF_A_JOB))
async def get_job(job_id: uuid.UUID, farm: FarmDep, key: KeyDep, readers: ReadersDep) -> Response:
    # what clients waiting on a job repeat: on the event loop, one connection, one statement,
    # the JSON encoded once (returned as bytes, it is not validated again)
    body = await polls.read_job(farm, readers, key, job_id)
    return Response(body, media_type="application/json")


def _job_now(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    """The job as a route that changed it answers (cancel, redo)."""
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
        return jobs.job_out(farm, job, session)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=responses(*_OF_A_JOB, JobNotCancellable),
)
def cancel_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    jobs.cancel(farm, tenant, job_id)
    return _job_now(job_id, farm, tenant)


@router.delete("/jobs/{job_id}", status_code=204, responses=responses(*_OF_A_JOB))
def delete_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> Response:
    jobs.delete_job(farm, tenant, job_id)
    return Response(status_code=204)


@router.get(
    "/jobs/{job_id}/audio",
    status_code=307,
    response_class=RedirectResponse,
    responses={
        307: {"description": "To the programme's file (a presigned address)"},
        **responses(*_OF_A_JOB, AudioNotReady, FilesExpired),
    },
)
def job_audio(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> RedirectResponse:
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
    return RedirectResponse(jobs.audio_url(farm, job), status_code=307)


@router.get(
    "/jobs/{job_id}/webhooks",
    response_model=list[WebhookDeliveryOut],
    responses=responses(*_OF_A_JOB),
)
def job_webhooks(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> list[WebhookDeliveryOut]:
    with farm.sessions() as session:
        return history.webhook_history(tenant, job_id, session=session)


@router.get("/jobs/{job_id}/events", response_model=EventPage, responses=responses(*_OF_A_JOB))
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
        *_OF_A_JOB, ChapterNotFound, FilesExpired, JobNotRedoable, RequestUnreadable
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
    return _job_now(job_id, farm, tenant)


@router.get("/limits", response_model=LimitsOut, responses=responses(*KEYED))
def get_limits(farm: FarmDep, tenant: TenantDep) -> LimitsOut:
    """The tenant's share of the GPUs and its limits (an operator sets them with
    ``lyre tenants set``), and the characters it has submitted today."""
    return jobs.tenant_limits(farm, tenant)


@router.get("/webhooks/secret", response_model=WebhookSecretOut, responses=responses(*KEYED))
def webhook_secret(tenant: TenantDep) -> WebhookSecretOut:
    """The secret the tenant's webhooks are signed with, for its receivers to verify them."""
    return WebhookSecretOut(secret=tenant.webhook_secret)


@router.post(
    "/webhooks/secret/rotate", response_model=WebhookSecretOut, responses=responses(*KEYED)
)
def rotate_webhook_secret(farm: FarmDep, tenant: TenantDep) -> WebhookSecretOut:
    """A new secret: every delivery sent from now on, retries included, is signed with it."""
    with farm.sessions() as session:
        return WebhookSecretOut(secret=tenants.rotate_webhook_secret(session, tenant.id))


@router.get("/lexicon", response_model=LexiconIn, responses=responses(*KEYED))
def get_lexicon(tenant: TenantDep) -> LexiconIn:
    """The tenant's pronunciation lexicon, applied to every job under a request's own."""
    return LexiconIn(entries=tenant.lexicon or {})


@router.put(
    "/lexicon",
    response_model=LexiconIn,
    responses=responses(*KEYED, InvalidInput, RequestUnreadable),
)
def put_lexicon(body: LexiconIn, farm: FarmDep, tenant: TenantDep) -> LexiconIn:
    return LexiconIn(entries=jobs.set_lexicon(farm, tenant, body.entries))


@router.get("/voices", response_model=list[VoiceOut], responses=responses(*KEYED))
def voices(tenant: TenantDep) -> list[VoiceOut]:
    return [VoiceOut(id=v, engines=list(get_args(SpeakingEngine))) for v in VOICES]
