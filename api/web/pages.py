"""The web page at ``/``: sign in with a key, see the jobs, open one.

Pages are rendered on the server and work as plain forms (each POST answers 303 with the page to
show next); ``static/app.js`` adds live progress and the chapter player. Every form carries a
CSRF token, and a POST whose ``Origin`` is another site's is refused as well.
"""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.deps import FarmDep
from api.errors import ApiError, JobNotFound
from api.schemas import JobOut, PreviewOut
from api.services import jobs, tenants
from api.web.sessions import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    Signed,
    close_session,
    open_session,
    same_token,
    session_cookie,
    set_cookie,
    signed_in,
)
from shared.audio.encode import FORMATS
from shared.audio.presets import PRESETS
from shared.farm.context import FarmContext
from shared.infra.models import Chunk
from shared.text.chunking import Boundary
from shared.text.voices import DEFAULT_VOICE, VOICES

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals.update(
    voices=VOICES, default_voice=DEFAULT_VOICE, formats=FORMATS, presets=PRESETS
)


def _signed(request: Request, farm: FarmDep) -> Signed | None:
    return signed_in(farm, request)


SignedDep = Annotated[Signed | None, Depends(_signed)]


def page(
    request: Request, farm: FarmContext, name: str, status: int = 200, **context: Any
) -> HTMLResponse:
    """A template rendered with the headers every page carries: scripts, styles and forms of
    this origin only; audio from here or from the object store the presigned links point at."""
    response = templates.TemplateResponse(request, name, context, status_code=status)
    media = store_origin(farm)
    response.headers.update(
        {
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
            f"media-src 'self' {media}; frame-ancestors 'none'; form-action 'self'; "
            "base-uri 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-store",
        }
    )
    return response


def see(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def store_origin(farm: FarmContext) -> str:
    """The origin presigned download URLs point at ('https:' for AWS's many hosts)."""
    storage = farm.settings.storage
    if storage.backend != "s3":
        return ""
    url = storage.public_endpoint_url or storage.endpoint_url
    if not url:
        return "https:"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_site(request: Request) -> bool:
    """A POST's Origin, when the browser sends one, is this site."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


# --- signing in and out -------------------------------------------------------------------


@router.get("/")
def home(request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    if signed is None:
        return sign_in_page(request, farm)
    return home_page(request, farm, signed)


def home_page(
    request: Request,
    farm: FarmContext,
    signed: Signed,
    error: str = "",
    status: int = 200,
    form: dict[str, Any] | None = None,
    preview: PreviewOut | None = None,
) -> Response:
    with farm.sessions() as session:
        found, _ = jobs.list_jobs(signed.tenant, None, 50, None, session=session)
        listed = jobs.jobs_out(farm, found, session)
    return page(
        request,
        farm,
        "home.html",
        status,
        signed=signed,
        jobs=listed,
        error=error,
        form=form or {},
        preview=preview,
        max_upload_bytes=farm.settings.farm.max_upload_bytes,
        usage=tenants.tenant_usage(farm, signed.tenant, None, None),
    )


def sign_in_page(
    request: Request, farm: FarmContext, error: str = "", status: int = 200
) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(request, farm, "sign_in.html", status, csrf=token, error=error)
    set_cookie(response, SIGN_IN_COOKIE, token, farm, max_age_s=3600)
    return response


@router.post("/sign-in")
async def sign_in(request: Request, farm: FarmDep) -> Response:
    async with request.form() as form:
        key, sent = str(form.get("key", "")).strip(), form.get("csrf")
    if not same_site(request) or not same_token(sent, request.cookies.get(SIGN_IN_COOKIE)):
        return sign_in_page(request, farm, "The page had expired: please sign in again.", 403)
    token = await run_in_threadpool(open_session, farm, key) if key else None
    if token is None:
        return sign_in_page(request, farm, "That API key is not valid.", 401)
    response = see("/")
    session_cookie(response, token, farm)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    async with request.form() as form:
        sent = form.get("csrf")
    if signed is not None and not (same_site(request) and same_token(sent, signed.csrf)):
        return page(request, farm, "expired.html", 403, signed=signed, back="/")
    await run_in_threadpool(close_session, farm, request)
    response = see("/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- a job's page ---------------------------------------------------------------------------


@router.get("/jobs/{job_id}")
def job(job_id: str, request: Request, farm: FarmDep, signed: SignedDep) -> Response:
    if signed is None:
        return see("/")
    return job_page(request, farm, signed, job_id)


def job_page(
    request: Request,
    farm: FarmContext,
    signed: Signed,
    job_id: str,
    error: str = "",
    status: int = 200,
) -> Response:
    try:
        with farm.sessions() as session:
            found = jobs.get_job(signed.tenant, job_uuid(job_id), session=session)
            out = jobs.job_out(farm, found, session)
            texts = chapter_texts(session, found.id)
    except ApiError as exc:  # not this tenant's, or no such job
        return page(
            request, farm, "missing.html", exc.status_code, signed=signed, reason=exc.detail
        )
    return page(
        request,
        farm,
        "job.html",
        status,
        signed=signed,
        job=out,
        player=player(out),
        texts=texts,
        suspects=[(c.number, s) for c in out.chapters if c.checks for s in c.checks.suspects],
        error=error,
    )


@router.get("/jobs/{job_id}/chunks/{index}/audio")
def chunk_audio(job_id: str, index: int, farm: FarmDep, signed: SignedDep) -> Response:
    """A chunk's audio for the page's player (a suspect one, to listen to before a redo)."""
    if signed is None:
        return see("/")
    try:
        audio = jobs.chunk_audio(farm, signed.tenant, job_uuid(job_id), index)
    except ApiError as exc:
        return Response(exc.detail, exc.status_code, media_type="text/plain")
    return Response(audio, media_type="audio/wav")


@router.get("/jobs/{job_id}/library.zip")
def library_zip(job_id: str, farm: FarmDep, signed: SignedDep) -> Response:
    """The book for a library server's folder (as ``GET /v1/jobs/{id}/library.zip``)."""
    if signed is None:
        return see("/")
    try:
        return jobs.library_zip(farm, signed.tenant, job_uuid(job_id))
    except ApiError as exc:
        return Response(exc.detail, exc.status_code, media_type="text/plain")


def job_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise JobNotFound() from None


_PARAGRAPH = {Boundary.PARAGRAPH, Boundary.SPEAKER, Boundary.CHAPTER}


def chapter_texts(session: Any, job_id: uuid.UUID) -> dict[int, str]:
    """Each chapter's text as it was written (before the lexicon), for the redo form."""
    texts: dict[int, list[str]] = {}
    rows = session.execute(
        select(Chunk.chapter, Chunk.text, Chunk.caption, Chunk.boundary)
        .where(Chunk.job_id == job_id)
        .order_by(Chunk.index)
    )
    for chapter, text, caption, boundary in rows:
        parts = texts.setdefault(chapter + 1, [])
        if parts:
            parts.append("\n\n" if boundary in _PARAGRAPH else " ")
        parts.append(caption or text)
    return {number: "".join(parts) for number, parts in texts.items()}


def player(out: JobOut) -> list[dict[str, Any]]:
    """What the player moves between: each chapter's file (a book of several chapters has
    them), else the programme, a one-chapter job's only file."""
    files = [{"title": c.title, "number": c.number, "url": c.url} for c in out.chapters if c.url]
    programme = next((o.url for o in out.outputs if o.kind == "programme"), None)
    if files or programme is None:
        return files
    return [{"title": out.title or "The programme", "number": 1, "url": programme}]
