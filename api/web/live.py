"""Live progress for the page: a server-sent event stream of the jobs' and chapters' progress,
the same snapshot as JSON for browsers that fall back to polling; and voices' samples.

The stream reads a snapshot a second and sends it only when it changed; it ends, with an
``end`` event, once every job it follows has ended, so that the browser does not reconnect.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.deps import FarmDep
from api.errors import ApiError
from api.services import speech
from api.web.pages import SignedDep, job_uuid
from shared.farm.context import FarmContext
from shared.farm.outputs import chapter_progress
from shared.farm.states import ACTIVE
from shared.infra.models import Job, Tenant

router = APIRouter(include_in_schema=False)

EVERY_S = 1.0
KEEPALIVE_S = 15.0  # a comment line, so that proxies do not close a quiet stream


def snapshot(farm: FarmContext, tenant: Tenant, job_id: uuid.UUID | None) -> list[dict[str, Any]]:
    """The tenant's newest jobs (or the one asked for) with each chapter's chunks done."""
    query = select(Job).where(Job.tenant_id == tenant.id)
    query = query.where(Job.id == job_id) if job_id else query
    with farm.sessions() as session:
        found = list(session.scalars(query.order_by(Job.created_at.desc()).limit(50)))
        chapters = chapter_progress(farm, session, [j.id for j in found])
    return [
        {
            "id": str(j.id),
            "status": j.status,
            "done": j.chunks_done,
            "total": j.chunks_total,
            "files": len(j.outputs or []),
            "version": j.version,
            "error": j.error,
            "chapters": [
                {
                    "number": c["number"],
                    "status": c["status"],
                    "done": c["chunks_done"],
                    "total": c["chunks_total"],
                }
                for c in chapters[j.id]
            ],
        }
        for j in found
    ]


def _asked(job: str | None) -> uuid.UUID | None:
    return job_uuid(job) if job else None


@router.get("/progress")
def progress(farm: FarmDep, signed: SignedDep, job: str | None = None) -> Response:
    """The snapshot as JSON: the page polls it where server-sent events do not get through."""
    if signed is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    return JSONResponse({"jobs": snapshot(farm, signed.tenant, _asked(job))})


@router.get("/live")
async def live(request: Request, farm: FarmDep, signed: SignedDep, job: str | None = None):
    if signed is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    asked = _asked(job)

    async def events() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        sent, quiet = None, 0.0
        while not await request.is_disconnected():
            jobs = await run_in_threadpool(snapshot, farm, signed.tenant, asked)
            if jobs != sent:
                yield f"event: progress\ndata: {json.dumps({'jobs': jobs})}\n\n"
                sent, quiet = jobs, 0.0
            if all(j["status"] not in ACTIVE for j in jobs):
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(EVERY_S)
            quiet += EVERY_S
            if quiet >= KEEPALIVE_S:
                yield ": still here\n\n"
                quiet = 0.0

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/voices/{voice}/sample")
async def voice_sample(voice: str, farm: FarmDep, signed: SignedDep) -> Response:
    """What the page's "Listen to this voice" plays: made once through the farm, then cached."""
    if signed is None:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    try:
        audio, content_type = await speech.voice_sample(farm, signed.tenant, voice)
    except ApiError as exc:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return Response(
        audio, media_type=content_type, headers={"Cache-Control": "private, max-age=86400"}
    )
