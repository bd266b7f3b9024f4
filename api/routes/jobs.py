"""/v1 routes: parse, call a service, shape the answer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, get_args

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import FarmDep, TenantDep
from api.errors import InputTooLarge, InvalidInput
from api.schemas import EventPage, JobCreate, JobOut, JobPage, VoiceOut, WebhookDeliveryOut
from api.services import jobs
from shared.farm.states import JobStatus
from shared.infra.settings import SpeakingEngine
from shared.text.voices import VOICES

router = APIRouter(prefix="/v1")

_STATUS = Query(default=None, description="Only jobs in this status")


async def _read_body(request: Request, limit: int) -> JobCreate:
    """A JSON body, or multipart/form-data with the text as a file and the rest as fields."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise InputTooLarge(f"the request is larger than {limit} bytes")
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            fields = await _form_fields(request, limit)
        else:
            fields = json.loads(await request.body())
        if not isinstance(fields, dict):
            raise InvalidInput("the body must be a JSON object")
        body = JobCreate.model_validate(fields)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg}") from None
    except ValidationError as exc:
        raise InvalidInput("; ".join(_describe(e) for e in exc.errors())) from None
    if len(body.text.encode()) > limit:
        raise InputTooLarge(f"the text is larger than {limit} bytes")
    return body


async def _form_fields(request: Request, limit: int) -> dict:
    async with request.form() as form:
        fields: dict[str, Any] = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        if upload is not None and not isinstance(upload, str):
            data = await upload.read(limit + 1)
            if len(data) > limit:
                raise InputTooLarge(f"the file is larger than {limit} bytes")
            try:
                fields["text"] = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise InvalidInput("the file is not UTF-8 text") from None
    if "metadata" in fields:  # a JSON object in a form field
        fields["metadata"] = json.loads(fields["metadata"])
    return fields


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
    body = await _read_body(request, farm.settings.farm.max_input_bytes)
    job = await run_in_threadpool(jobs.submit, farm, tenant, body, idempotency_key)
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
    return JobPage(items=[jobs.job_out(farm, j) for j in found], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, farm: FarmDep, tenant: TenantDep) -> JobOut:
    with farm.sessions() as session:
        job = jobs.get_job(tenant, job_id, session=session)
    return jobs.job_out(farm, job)


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
        return jobs.webhook_history(tenant, job_id, session=session)


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
        return jobs.job_events(tenant, job_id, after, limit, session=session)


@router.get("/voices", response_model=list[VoiceOut])
def voices(tenant: TenantDep) -> list[VoiceOut]:
    return [VoiceOut(id=v, engines=list(get_args(SpeakingEngine))) for v in VOICES]
