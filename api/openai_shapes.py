"""OpenAI's shapes for the routes that speak its protocol (``api/routes/speech.py``): the speech
request as ``client.audio.speech.create`` sends it, the model list, the voice list Open WebUI
reads, and errors as ``{"error": {"message", "type", "param", "code"}}`` (with Lyre's
``detail`` beside it), since OpenAI's clients show a refused request's reason from there."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal, get_args

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, field_validator

from api.errors import ApiError
from api.schemas import SEED_DESCRIPTION
from shared.audio.stream import SpeechFormat
from shared.audio.tempo import MAX_SPEED, MIN_SPEED
from shared.farm.seeds import SEED_LIMIT
from shared.text.voices import OPENAI_VOICES, VOICES, find_voice

# OpenAI's model names speak with the farm's engine, as "orpheus" does: a program's choice of
# model needs no change
SpeechModel = Literal["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "orpheus"]
MODELS: tuple[SpeechModel, ...] = get_args(SpeechModel)
MODELS_CREATED = 1795910400  # 2026-11-29, when Lyre first answered to them (Unix seconds)
MAX_INPUT_CHARS = 4096  # OpenAI's limit


class SpeechCreate(BaseModel):
    """``POST /v1/audio/speech``'s body, as OpenAI defines it."""

    model: SpeechModel
    input: str = Field(min_length=1, max_length=MAX_INPUT_CHARS)
    voice: str = Field(description="A Lyre voice, or an OpenAI voice name (mapped to one)")
    instructions: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)
    response_format: SpeechFormat = "mp3"
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    stream_format: Literal["audio", "sse"] = "audio"
    seed: int | None = Field(  # not OpenAI's: its clients send it as an extra field
        default=None, ge=0, lt=SEED_LIMIT, description=f"Lyre's own: {SEED_DESCRIPTION}"
    )

    @field_validator("voice", mode="before")
    @classmethod
    def _voice_id(cls, given: Any) -> Any:
        """OpenAI's custom voice object, ``{"id": …}``, names a voice as its string does."""
        return given.get("id") if isinstance(given, dict) else given

    @field_validator("voice")
    @classmethod
    def _known_voice(cls, given: str) -> str:
        if find_voice(given) is None:
            raise ValueError(
                f"unknown voice {given!r}: Lyre's voices are {', '.join(VOICES)}; OpenAI's "
                f"{', '.join(sorted(OPENAI_VOICES))} speak with the nearest of them"
            )
        return given

    @field_validator("input")
    @classmethod
    def _words(cls, given: str) -> str:
        if not given.strip():
            raise ValueError("input is only white space: there is nothing to say")
        return given


def _reason(error: Any) -> str:
    """``field: reason`` of one of pydantic's errors, the body's fields named as in it."""
    loc = error["loc"][1:] if error["loc"][:1] == ("body",) else error["loc"]
    where = ".".join(str(p) for p in loc) or "body"
    return f"{where}: {error['msg'].removeprefix('Value error, ')}"


class ModelOut(BaseModel):
    id: SpeechModel
    object: Literal["model"] = "model"
    created: int = MODELS_CREATED
    owned_by: str = "lyre"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


class AudioVoice(BaseModel):
    id: str
    name: str
    openai_names: list[str] = Field(description="OpenAI's voice names that speak with it")


class AudioVoices(BaseModel):
    """What Open WebUI reads from ``{base}/audio/voices``: ``voices``, each ``id`` and ``name``."""

    voices: list[AudioVoice]


class AudioModel(BaseModel):
    id: SpeechModel


class AudioModels(BaseModel):
    """What Open WebUI reads from ``{base}/audio/models``: ``models``, each an ``id``."""

    models: list[AudioModel]


_ERROR_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


def openai_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    return JSONResponse({"error": error, "detail": message}, status, headers=headers)


class OpenAIRoute(APIRoute):
    """A route whose refusals, its dependencies' included (a bad key, a rate limit), are
    shaped as OpenAI's. Errors once a streamed answer has started end its stream instead."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else exc.headers
                return openai_error(exc.status_code, exc.detail, headers)
            except RequestValidationError as exc:
                return openai_error(400, "; ".join(_reason(e) for e in exc.errors()))

        return route
