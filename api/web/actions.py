"""The page's forms: preview what a job would say, submit it, cancel it, delete it, redo a
chapter or one chunk.

Each is the API's own service called with the signed-in tenant, behind the same checks; a
refused input comes back as the page it was sent from, with the reason where a screen reader
announces it, and the form as it was filled in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import FarmDep
from api.errors import ApiError
from api.services import jobs
from api.uploads import Upload, read_form
from api.web import forms
from api.web.pages import SignedDep, home_page, job_page, job_uuid, page, same_site, see
from api.web.sessions import Signed, same_token
from shared.farm.context import FarmContext

router = APIRouter(include_in_schema=False)

Action = Callable[[Signed, Upload], Any]


async def _guarded(
    request: Request, farm: FarmContext, signed: Signed | None, action: Action, job_id: str = ""
) -> Response:
    """Run a form's action (in a thread: the services block) for a signed-in browser whose form
    carries its session's token; an input the services refuse is shown where it was sent."""
    if signed is None:
        return see("/")
    fields: dict[str, Any] = {}
    try:
        upload = await read_form(request, farm.settings.farm)
        fields = upload.fields
        if not same_site(request) or not same_token(fields.get("csrf"), signed.csrf):
            return page(request, farm, "expired.html", 403, signed=signed, back=f"/jobs/{job_id}")
        return await run_in_threadpool(action, signed, upload)
    except ApiError as exc:
        if job_id:
            return job_page(request, farm, signed, job_id, exc.detail, exc.status_code)
        return home_page(request, farm, signed, exc.detail, exc.status_code, fields)


@router.post("/jobs")
async def submit(request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    def create(signed: Signed, upload: Upload) -> Response:
        body, data, filename = forms.job_request(upload)
        job = jobs.submit(farm, signed.tenant, body, None, data, filename)
        return see(f"/jobs/{job.id}")

    return await _guarded(request, farm, signed, create)


@router.post("/preview")
async def preview(request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    """The form's text as the farm would speak it, shown under the form, before any is made."""

    def show(signed: Signed, upload: Upload) -> Response:
        body, data, filename = forms.job_request(upload)
        said = jobs.preview(farm, signed.tenant, body, data, filename)
        return home_page(request, farm, signed, form=upload.fields, preview=said)

    return await _guarded(request, farm, signed, show)


@router.post("/jobs/{job_id}/cancel")
async def cancel(job_id: str, request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    def stop(signed: Signed, *_: Any) -> Response:
        jobs.cancel(farm, signed.tenant, job_uuid(job_id))
        return see(f"/jobs/{job_id}")

    return await _guarded(request, farm, signed, stop, job_id)


@router.post("/jobs/{job_id}/delete")
async def delete(job_id: str, request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    def remove(signed: Signed, *_: Any) -> Response:
        jobs.delete_job(farm, signed.tenant, job_uuid(job_id))
        return see("/")

    return await _guarded(request, farm, signed, remove, job_id)


@router.post("/jobs/{job_id}/chapters/{number}/redo")
async def redo(
    job_id: str, number: int, request: Request, farm: FarmDep, signed: SignedDep
) -> Response:
    def again(signed: Signed, upload: Upload) -> Response:
        redo = forms.redo_request(upload.fields)
        jobs.redo(farm, signed.tenant, job_uuid(job_id), number - 1, redo)
        return see(f"/jobs/{job_id}")

    return await _guarded(request, farm, signed, again, job_id)


@router.post("/jobs/{job_id}/chunks/{index}/redo")
async def redo_chunk(
    job_id: str, index: int, request: Request, farm: FarmDep, signed: SignedDep
) -> Response:
    def again(signed: Signed, upload: Upload) -> Response:
        redo = forms.chunk_redo_request(upload.fields)
        jobs.redo_one_chunk(farm, signed.tenant, job_uuid(job_id), index, redo)
        return see(f"/jobs/{job_id}")

    return await _guarded(request, farm, signed, again, job_id)
