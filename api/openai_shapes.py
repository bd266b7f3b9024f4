"""OpenAI's shapes for the routes that speak its protocol (``api/routes/speech.py``): the speech
request as ``client.audio.speech.create`` sends it, the model list, the voice list Open WebUI
reads, and OpenAI's error object, ``{"message", "type", "param", "code"}``, which a problem
of these routes carries as its member ``error``, since OpenAI's clients show a refused request's
reason from there."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.schemas import NOT_BLANK, SEED_DESCRIPTION, Seed
from shared.audio.encode import SpeechFormat
from shared.audio.tempo import MAX_SPEED, MIN_SPEED
from shared.text.voices import OPENAI_VOICES, VOICES, find_voice

# OpenAI's model names speak with the farm's engine, as "orpheus" does: a program's choice of
# model needs no change
SpeechModel = Literal["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "orpheus"]
MODELS: tuple[SpeechModel, ...] = get_args(SpeechModel)
MODELS_CREATED = 1795910400  # 2026-11-29, when Lyre first answered to them (Unix seconds)
MAX_INPUT_CHARS = 4096  # OpenAI's limit
# The voices a request may name (in any case), as the schema states them; the validators below
# check them with reasons
_VOICE_NAMES = {"enum": [*VOICES, *sorted(OPENAI_VOICES)]}


def _voice_schema(schema: dict[str, Any]) -> None:
    del schema["type"]  # a name, or OpenAI's voice object
    schema["anyOf"] = [
        {"type": "string", **_VOICE_NAMES},
        {"type": "object", "properties": {"id": _VOICE_NAMES}, "required": ["id"]},
    ]


class SpeechCreate(BaseModel):
    """``POST /v1/audio/speech``'s body, as OpenAI defines it."""

    model_config = ConfigDict(strict=True)  # JSON's types as the schema says: no true for 1

    model: SpeechModel
    input: str = Field(
        min_length=1, max_length=MAX_INPUT_CHARS, json_schema_extra={"pattern": NOT_BLANK}
    )
    voice: str = Field(
        description="A Lyre voice, or an OpenAI voice name (mapped to one), or OpenAI's "
        'voice object naming one, {"id": …}',
        json_schema_extra=_voice_schema,
    )
    instructions: str | None = Field(default=None, max_length=MAX_INPUT_CHARS)
    response_format: SpeechFormat = "mp3"
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    stream_format: Literal["audio", "sse"] = "audio"
    seed: Seed | None = Field(  # not OpenAI's: its clients send it as an extra field
        default=None, description=f"Lyre's own: {SEED_DESCRIPTION}"
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


def openai_error_object(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error object for an answer of ``status``: its clients show ``message``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"message": message, "type": kind, "param": None, "code": None}


class OpenAIRoute(APIRoute):
    """A route that speaks OpenAI's protocol: its problems, its dependencies' included (a bad
    key, a rate limit), carry OpenAI's error object, and a request its schema refuses is a 400,
    OpenAI's status (``api.handlers``). Errors once a streamed answer has started end its
    stream instead."""
