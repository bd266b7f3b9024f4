"""RFC 9457 problem details: the body of every error the api answers
(``application/problem+json``), and the OpenAPI responses that document them on each route.

A problem's ``type`` is ``/problems/`` and its kind, named after the :class:`ApiError` raised
(``JobNotFound``: ``/problems/job-not-found``); docs/errors.md lists them. A problem of a route
that speaks OpenAI's protocol also carries OpenAI's error object as the member ``error``, which
OpenAI's clients read."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from api.errors import ApiError, DependencyDown, LimitReached, NotAuthenticated
from api.openai_shapes import openai_error_object

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "/problems/"


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="Where: body, query, path or header, then the field's names and indexes"
    )
    msg: str = Field(description="What is wrong with it")
    type: str = Field(description="The kind of error, as pydantic names it")


class Problem(BaseModel):
    """A problem (RFC 9457): why the request was not answered as asked."""

    type: str = Field(
        description="The kind of problem: a URI reference, /problems/<kind> (docs/errors.md "
        "lists them), or about:blank when the status says it all"
    )
    title: str = Field(description="A short summary of the kind, the same for every occurrence")
    status: int = Field(description="The HTTP status, as answered")
    detail: str = Field(description="What went wrong with this request, for a person to read")
    errors: list[FieldError] | None = Field(
        default=None, description="A refused request's reasons, field by field"
    )


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIProblem(Problem):
    """A problem of a route that speaks OpenAI's protocol: OpenAI's error object beside it."""

    error: OpenAIError = Field(description="OpenAI's error object, which its clients read")


class Unready(Problem):
    """``/readyz``'s answer while a dependency fails: which, and how."""

    failing: dict[str, str] = Field(description="Each failing dependency and its error")


MODELS = (Problem, OpenAIProblem, Unready)
# What every route behind a tenant's key may answer: no key (or a wrong one), too many
# requests, the database or Redis down while it looks the key up
KEYED: tuple[type[ApiError], ...] = (NotAuthenticated, LimitReached, DependencyDown)

# Headers each status is answered with, as documented
_HEADERS: dict[int, dict[str, dict[str, Any]]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
_HEADERS[503] = _HEADERS[429]


def problem_type(error: ApiError) -> str:
    return "about:blank" if type(error) is ApiError else TYPE_PREFIX + error.slug()


def problem_body(error: ApiError, openai: bool = False) -> dict[str, Any]:
    generic = type(error) is ApiError  # an HTTP status with nothing more to say
    body: dict[str, Any] = {
        "type": problem_type(error),
        "title": HTTPStatus(error.status_code).phrase if generic else error.title(),
        "status": error.status_code,
        "detail": error.detail,
    }
    if error.errors is not None:
        body["errors"] = error.errors
    if openai:
        body["error"] = openai_error_object(error.status_code, error.detail)
    return body


def responses(
    *errors: type[ApiError], model: type[Problem] = Problem
) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that raises ``errors``: each status they answer, its
    problem schema (``model``: :class:`OpenAIProblem` on OpenAI's routes), its kinds of
    problem and its headers."""
    by_status: dict[int, list[type[ApiError]]] = {}
    for error in errors:
        by_status.setdefault(error.status_code, []).append(error)
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    documented: dict[int | str, dict[str, Any]] = {}
    for status, kinds in sorted(by_status.items()):
        documented[status] = {
            "description": " ".join(f"{TYPE_PREFIX}{k.slug()}: {k.__doc__}" for k in kinds),
            "content": {PROBLEM_JSON: {"schema": schema}},
        }
        if status in _HEADERS:
            headers = _HEADERS[status]
            documented[status]["headers"] = {n: {**h, "required": True} for n, h in headers.items()}
    return documented


def document_problems(app: FastAPI, inputs: Iterable[type[BaseModel]] = ()) -> None:
    """Make ``app``'s OpenAPI document say what the api answers: the problem models among its
    components (and ``inputs``, bodies that routes read themselves and document by
    reference), FastAPI's own 422 (a shape the api never answers) gone, and every operation
    that answers 401 asking for a key."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(m, "serialization") for m in MODELS]
    models += [(m, "validation") for m in inputs]

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _with_problems(generate(), models)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _with_problems(
    document: dict[str, Any], models: list[tuple[type[BaseModel], JsonSchemaMode]]
) -> dict[str, Any]:
    _, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name, schema in defs.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    for fastapi_own in ("HTTPValidationError", "ValidationError"):
        schemas.pop(fastapi_own, None)
    components["securitySchemes"] = {
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "description": "A tenant's API key (lyre keys create)",
        }
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.get("responses", {})
            if "HTTPValidationError" in str(answers.get("422")):
                del answers["422"]
            if "401" in answers:
                operation["security"] = [{"apiKey": []}]
    return document
