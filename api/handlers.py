"""The app's exception handlers: every error it answers is a problem (``api.problems``), a
dependency that is down is a 503 with Retry-After, and nothing answers a traceback."""

from __future__ import annotations

import logging

import botocore.exceptions
import kombu.exceptions
import psycopg
import redis.exceptions
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sql
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route

from api.errors import (
    ApiError,
    DependencyDown,
    InputTooLarge,
    InvalidInput,
    MethodNotAllowed,
    PathNotFound,
    RequestUnreadable,
    SpeechRefused,
    UnexpectedFailure,
)
from api.openai_shapes import OpenAIRoute
from api.problems import PROBLEM_JSON, problem_body
from shared.infra.outages import dependency_down

log = logging.getLogger(__name__)

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# The errors of the clients of Postgres, Redis and the object store: some say the service is
# down (dependency_down tells which), the rest are bugs
_DEPENDENCIES: tuple[type[Exception], ...] = (
    sql.DBAPIError,
    sql.DisconnectionError,
    sql.TimeoutError,  # the pool's wait for a connection
    psycopg.Error,  # the job's poll runs on the driver itself (api.services.polls)
    redis.exceptions.RedisError,
    kombu.exceptions.KombuError,
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,  # the object store's answer: a 5xx is its own failure
)
# Starlette's own refusals, as the api's kinds of problem (any other status: about:blank)
_HTTP_KINDS: dict[int, type[ApiError]] = {
    400: RequestUnreadable,  # a form it could not parse
    404: PathNotFound,
    405: MethodNotAllowed,
    413: InputTooLarge,
}


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _refused)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    for family in _DEPENDENCIES:
        app.add_exception_handler(family, _dependency)
    # Starlette answers with this, then raises the error on, for the server to log
    app.add_exception_handler(Exception, _unexpected)


def answer(request: Request, error: ApiError) -> Response:
    """``error`` as a problem; with OpenAI's error object on a route that speaks its protocol."""
    body = problem_body(error, openai=_speaks_openai(request))
    return JSONResponse(body, error.status_code, headers=error.headers, media_type=PROBLEM_JSON)


def _speaks_openai(request: Request) -> bool:
    return isinstance(request.scope.get("route"), OpenAIRoute)


async def _refused(request: Request, exc: ApiError) -> Response:
    return answer(request, exc)


async def _invalid(request: Request, exc: RequestValidationError) -> Response:
    """A request its schema refuses: 422, or 400 on OpenAI's routes, as OpenAI answers."""
    refusal = SpeechRefused if _speaks_openai(request) else InvalidInput
    return answer(request, refusal.of_fields(exc.errors()))


async def _http(request: Request, exc: HTTPException) -> Response:
    kind = _HTTP_KINDS.get(exc.status_code)
    if kind is None:
        error = ApiError(exc.detail)
        error.status_code = exc.status_code
    else:
        error = kind(exc.detail if kind in (RequestUnreadable, InputTooLarge) else None)
    error.headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:
        allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        error.headers = {"Allow": allowed}
        error.detail = f"{request.method} is not one of this path's methods: {allowed}"
    return answer(request, error)


def _allowed_methods(request: Request) -> str:
    """Every method the path answers: Starlette's own Allow names only those of the first
    route that matched the path, and FastAPI has a route per method."""
    if not isinstance(request.scope.get("route"), Route):
        return ""  # a mounted app's refusal (the static files): its Allow is right
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]
    return ", ".join(allowed)


async def _dependency(request: Request, exc: Exception) -> Response:
    """An error of a dependency's client: 503 if it says the service is down; otherwise a
    bug, logged here since a handled error goes no further."""
    down = _down(request, exc)
    if down is None:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return answer(request, down or UnexpectedFailure())


async def _unexpected(request: Request, exc: Exception) -> Response:
    """Any other error (the server logs it with its traceback): 503 if it was raised from
    an outage, else 500, and no traceback in the answer."""
    return answer(request, _down(request, exc) or UnexpectedFailure())


def _down(request: Request, exc: Exception) -> DependencyDown | None:
    service = dependency_down(exc)
    if service is None:
        return None
    log.warning("%s %s: the %s is down (%s)", request.method, request.url.path, service, exc)
    return DependencyDown(f"the {service} did not answer: try again after Retry-After seconds")
