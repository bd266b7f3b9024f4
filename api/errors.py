"""Exceptions the services raise, named as facts; the app maps each to an HTTP status."""

import math


class ApiError(Exception):
    status_code = 400
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.__doc__)
        self.detail = detail or self.__doc__ or ""


class NotAuthenticated(ApiError):
    """A valid API key is required: send Authorization: Bearer <key>."""

    status_code = 401


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


class JobNotRedoable(ApiError):
    """A chapter can be redone once the job has succeeded, one redo at a time."""

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


class FilesExpired(ApiError):
    """The job's files were removed at the end of its retention period."""

    status_code = 410
