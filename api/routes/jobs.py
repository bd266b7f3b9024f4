"""/v1 routes: parse, call a service, shape the answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import FarmDep, TenantDep
from api.errors import InputTooLarge, InvalidInput
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
from api.services import history, jobs
from shared.farm import tenants
from shared.farm.states import JobStatus
from shared.infra.settings import FarmSettings, SpeakingEngine
from shared.text.voices import VOICES

router = APIRouter(prefix="/v1")

_STATUS = Query(default=None, description="Only jobs in this status")


async def _read_body(
    request: Request, settings: FarmSettings
) -> tuple[JobCreate, bytes, str | None]:
    """A JSON body, or multipart/form-data with the input as the file ``file`` and the rest as
    fields; the input's bytes (the text, or the uploaded file) are read by content later."""
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise InputTooLarge(f"the request is larger than {limit} bytes")
    content_type = request.headers.get("content-type", "")
    data, filename = b"", None
    try:
        if content_type.startswith("multipart/form-data"):
            fields, data, filename = await _form_fields(request, limit)
        else:
            fields = json.loads(await request.body())
        if not isinstance(fields, dict):
            raise InvalidInput("the body must be a JSON object")
        if data and "text" not in fields:
            fields["text"] = ""  # the file is the input
        body = JobCreate.model_validate(fields)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from None
    except ValidationError as exc:
        raise InvalidInput("; ".join(_describe(e) for e in exc.errors())) from None
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


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error["loc"]) or "body"
    return f"{where}: {error['msg']}"


@router.post("/jobs", status_code=202, response_model=JobOut)
async def create_job(
    request: Request,
    response: Response,
    farm: FarmDep,
    tenant: TenantDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JobOut:
    body, data, filename = await _read_body(request, farm.settings.farm)
    job = await run_in_threadpool(jobs.submit, farm, tenant, body, idempotency_key, data, filename)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return jobs.job_out(farm, job)


@router.get("/jobs", response_model=JobPage)
def list_jobs(
    farm: FarmDep,
    tenant: TenantDep,
    status: JobStatus | None = _STATUS,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
) -> JobPage:
    with farm.sessions() as session:
        found, next_cursor = jobs.list_jobs(tenant, status, limit, cursor, session=session)
        items = jobs.jobs_out(farm, found, session)
    return JobPage(items=items, next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
        return jobs.job_out(farm, job, session)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    jobs.cancel(farm, tenant, job_id)
    return get_job(job_id, farm, tenant)


@router.delete("/jobs/{job_id}", status_code=204)
def delete_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> Response:
    jobs.delete_job(farm, tenant, job_id)
    return Response(status_code=204)


@router.get("/jobs/{job_id}/audio", status_code=307)
def job_audio(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> RedirectResponse:
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
    return RedirectResponse(jobs.audio_url(farm, job), status_code=307)


@router.get("/jobs/{job_id}/webhooks", response_model=list[WebhookDeliveryOut])
def job_webhooks(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> list[WebhookDeliveryOut]:
    with farm.sessions() as session:
        return history.webhook_history(tenant, job_id, session=session)


@router.get("/jobs/{job_id}/events", response_model=EventPage)
def job_events(
    job_id: uuid.UUID,
    farm: FarmDep,
    tenant: TenantDep,
    after: Annotated[int | None, Query(ge=0, description="Events after this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> EventPage:
    """The job's history: every change of the job's state and of its chunks' states."""
    with farm.sessions() as session:
        return history.job_events(tenant, job_id, after, limit, session=session)


@router.post("/jobs/{job_id}/chapters/{number}/regenerate", status_code=202, response_model=JobOut)
def regenerate_chapter(
    job_id: uuid.UUID,
    number: Annotated[int, Path(ge=1, description="The chapter's number, from 1")],
    body: ChapterRedo,
    farm: FarmDep,
    tenant: TenantDep,
) -> JobOut:
    """Make one chapter again (corrected text, or another voice), then the book's files, as
    the job's next version; the current files stay listed until the new ones are made."""
    jobs.redo(farm, tenant, job_id, number - 1, body)
    return get_job(job_id, farm, tenant)


@router.get("/limits", response_model=LimitsOut)
def get_limits(farm: FarmDep, tenant: TenantDep) -> LimitsOut:
    """The tenant's share of the GPUs and its limits (an operator sets them with
    ``lyre tenants set``), and the characters it has submitted today."""
    return jobs.tenant_limits(farm, tenant)


@router.get("/webhooks/secret", response_model=WebhookSecretOut)
def webhook_secret(tenant: TenantDep) -> WebhookSecretOut:
    """The secret the tenant's webhooks are signed with, for its receivers to verify them."""
    return WebhookSecretOut(secret=tenant.webhook_secret)


@router.post("/webhooks/secret/rotate", response_model=WebhookSecretOut)
def rotate_webhook_secret(farm: FarmDep, tenant: TenantDep) -> WebhookSecretOut:
    """A new secret: every delivery sent from now on, retries included, is signed with it."""
    with farm.sessions() as session:
        return WebhookSecretOut(secret=tenants.rotate_webhook_secret(session, tenant.id))


@router.get("/lexicon", response_model=LexiconIn)
def get_lexicon(tenant: TenantDep) -> LexiconIn:
    """The tenant's pronunciation lexicon, applied to every job under a request's own."""
    return LexiconIn(entries=tenant.lexicon or {})


@router.put("/lexicon", response_model=LexiconIn)
def put_lexicon(body: LexiconIn, farm: FarmDep, tenant: TenantDep) -> LexiconIn:
    return LexiconIn(entries=jobs.set_lexicon(farm, tenant, body.entries))


@router.get("/voices", response_model=list[VoiceOut])
def voices(tenant: TenantDep) -> list[VoiceOut]:
    return [VoiceOut(id=v, engines=list(get_args(SpeakingEngine))) for v in VOICES]
