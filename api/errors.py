"""Exceptions the services raise, named as facts; the app answers each as a problem
(``api.problems``): its status, its kind named after the class, its docstring the message
unless the raiser says more."""

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Self

from shared.farm import intake


class ApiError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None
    errors: list[dict[str, Any]] | None = None  # a refused request's reason per field

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.__doc__)
        self.detail = detail or self.__doc__ or ""

    @classmethod
    def slug(cls) -> str:
        """The kind of problem as a problem type's last segment: ``JobNotFound`` ->
        ``job-not-found``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()

    @classmethod
    def title(cls) -> str:
        """A short summary of the kind, the same for every occurrence: ``Job not found``."""
        return cls.slug().replace("-", " ").capitalize()

    @classmethod
    def of_fields(cls, errors: Iterable[Mapping[str, Any]], prefix: tuple[str, ...] = ()) -> Self:
        """The refusal of pydantic's ``errors``, each field named by its place in the request
        (``prefix`` before the model's own location: ``("body",)`` for a body's model)."""
        fields = [
            {
                "loc": [*prefix, *e["loc"]],
                "msg": str(e["msg"]).removeprefix("Value error, "),
                "type": str(e["type"]),
            }
            for e in errors
        ]
        refused = cls("; ".join(_field_reason(f) for f in fields) or None)
        refused.errors = fields
        return refused


def _field_reason(field: Mapping[str, Any]) -> str:
    """``text: Field required``: the field named as in the body (a body's place is implied)."""
    loc = field["loc"][1:] if field["loc"][:1] == ["body"] else field["loc"]
    return f"{'.'.join(str(p) for p in loc) or 'body'}: {field['msg']}"


class NotAuthenticated(ApiError):
    """A valid API key is required: send Authorization: Bearer <key>."""

    status_code = 401

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": "Bearer"}


class JobNotFound(ApiError):
    """No such job."""

    status_code = 404


class IdempotencyConflict(ApiError):
    """This Idempotency-Key was used with a different request body."""

    status_code = 409


class JobNotCancellable(ApiError):
    """The job has already ended."""

    status_code = 409


class AudioNotReady(ApiError):
    """The job has no audio yet."""

    status_code = 409


class InputTooLarge(ApiError):
    """The text is larger than this farm accepts."""

    status_code = 413


class InvalidInput(ApiError):
    """The request is not valid."""

    status_code = 422


class ChapterNotFound(ApiError):
    """The job has no chapter with this number."""

    status_code = 404


class ChunkNotFound(ApiError):
    """The job has no chunk with this number."""

    status_code = 404


class JobNotRedoable(ApiError):
    """A chapter or a chunk can be redone once the job has succeeded, one redo at a time."""

    status_code = 409


class LimitReached(ApiError):
    """A limit of the tenant's was reached: try again after Retry-After seconds."""

    status_code = 429

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


class SpeechRefused(ApiError):
    """The speech request is not valid."""

    status_code = 400  # OpenAI's status for a request it refuses; its clients expect it


class ModelNotFound(ApiError):
    """No such model."""

    status_code = 404


class VoiceNotFound(ApiError):
    """No such voice."""

    status_code = 404


class SpeechFailed(ApiError):
    """The farm could not make the speech."""

    status_code = 502


class SpeechStalled(ApiError):
    """The farm made no audio for too long (is a gpu worker running?)."""

    status_code = 504


class PathNotFound(ApiError):
    """No such path: /docs lists the api's paths."""

    status_code = 404


class MethodNotAllowed(ApiError):
    """The path does not answer this method: Allow lists those it does."""

    status_code = 405


class RequestUnreadable(ApiError):
    """The request's body could not be read."""

    status_code = 400


class DependencyDown(ApiError):
    """A service the farm depends on is down: try again after Retry-After seconds."""

    status_code = 503
    RETRY_AFTER_S = 5  # a restarting Postgres, Redis or object store is back in seconds

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(self.RETRY_AFTER_S)}


class UnexpectedFailure(ApiError):
    """The api failed to answer; the failure is logged for its operators."""

    status_code = 500


class FilesExpired(ApiError):
    """The job's files were removed at the end of its retention period."""

    status_code = 410


@contextmanager
def refusals() -> Iterator[None]:
    """The intake's refusals (``shared.farm.intake``) as the API's: a size past a limit is a
    413, any other a 422, each with the intake's reason."""
    try:
        yield
    except intake.InputTooLarge as exc:
        raise InputTooLarge(str(exc)) from None
    except intake.InputRefused as exc:
        raise InvalidInput(str(exc)) from None
