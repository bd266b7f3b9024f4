"""OpenAI's speech endpoint and what its clients ask for beside it: programs written for
``client.audio.speech.create`` run on Lyre by changing the base URL. Errors are shaped as
OpenAI's (:class:`api.openai_shapes.OpenAIRoute`)."""

from __future__ import annotations

from fastapi import APIRouter, Response, WebSocket
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import FarmDep, TenantDep
from api.errors import (
    ModelNotFound,
    RequestUnreadable,
    SpeechFailed,
    SpeechRefused,
    SpeechStalled,
    VoiceNotFound,
)
from api.openai_shapes import (
    MODELS,
    AudioModel,
    AudioModels,
    AudioVoice,
    AudioVoices,
    ModelList,
    ModelOut,
    OpenAIRoute,
    SpeechCreate,
)
from api.problems import KEYED, OpenAIProblem, responses
from api.services import speech
from api.services.voice_session import VoiceSession
from shared.audio.encode import ENCODINGS, SPEECH_FORMATS
from shared.text.voices import OPENAI_VOICES, VOICES

router = APIRouter(route_class=OpenAIRoute)

_AUDIO: dict[str, dict[str, dict]] = {
    "content": {ENCODINGS[fmt].content_type: {} for fmt in SPEECH_FORMATS}
}
_AUDIO["content"]["text/event-stream"] = {}


_MADE = (SpeechFailed, SpeechStalled)  # audio the farm is asked to make now


@router.post(
    "/audio/speech",
    response_class=Response,
    responses={
        200: _AUDIO,
        **responses(*KEYED, SpeechRefused, RequestUnreadable, *_MADE, model=OpenAIProblem),
    },
)
async def create_speech(body: SpeechCreate, farm: FarmDep, tenant: TenantDep) -> Response:
    """Text to speech, as OpenAI's ``POST /v1/audio/speech``: the audio is sent as the farm
    makes it, chunk by chunk (``stream_format`` ``sse``: as ``speech.audio.delta`` events).
    The request is a job of the tenant's, ahead of books; ``X-Lyre-Job-Id`` names it."""
    job = await run_in_threadpool(speech.submit_speech, farm, tenant, body)
    audio = speech.SpeechAudio(farm, job, body.response_format, body.speed)
    first, rest = await speech.first_and_rest(farm, audio)
    headers = {"X-Lyre-Job-Id": str(job.id), "X-Lyre-Voice": job.voice}
    if body.instructions and body.instructions.strip():
        headers["X-Lyre-Warning"] = speech.INSTRUCTIONS_IGNORED
    if body.stream_format == "sse":
        events = speech.sse_body(first, rest, len(body.input))
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)
    content_type = ENCODINGS[body.response_format].content_type
    data = speech.audio_body(first, rest)
    return StreamingResponse(data, media_type=content_type, headers=headers)


@router.websocket("/audio/speech/ws")
async def speech_socket(websocket: WebSocket, farm: FarmDep) -> None:
    """Text in as it is written, PCM out as it is made: see ``api.services.voice_session``
    and docs/speech.md."""
    await VoiceSession(farm, websocket).run()


@router.get("/models", response_model=ModelList, responses=responses(*KEYED, model=OpenAIProblem))
def list_models(tenant: TenantDep) -> ModelList:
    """OpenAI's model list: the speech models this farm answers to (all speak with its
    engine). Needs a key, as OpenAI's does."""
    return ModelList(data=[ModelOut(id=model) for model in MODELS])


@router.get(
    "/models/{model_id}",
    response_model=ModelOut,
    responses=responses(*KEYED, ModelNotFound, model=OpenAIProblem),
)
def get_model(model_id: str, tenant: TenantDep) -> ModelOut:
    if model_id not in MODELS:
        raise ModelNotFound(f"no model {model_id!r}: the models are {', '.join(MODELS)}")
    return ModelOut(id=model_id)  # type: ignore[arg-type]


@router.get("/audio/models", response_model=AudioModels)
def audio_models() -> AudioModels:
    """The speech models, as Open WebUI reads them; without a key, since Open WebUI asks
    without one (the names are no secret)."""
    return AudioModels(models=[AudioModel(id=model) for model in MODELS])


@router.get("/audio/voices", response_model=AudioVoices)
def audio_voices() -> AudioVoices:
    """Lyre's voices, as Open WebUI reads them (``id`` and ``name``), each with OpenAI's voice
    names that speak with it; without a key, since Open WebUI asks without one."""
    names = {voice: sorted(n for n, v in OPENAI_VOICES.items() if v == voice) for voice in VOICES}
    return AudioVoices(
        voices=[AudioVoice(id=v, name=v.capitalize(), openai_names=names[v]) for v in VOICES]
    )


@router.get(
    "/voices/{voice}/sample",
    response_class=Response,
    responses={
        200: {"content": {"audio/mpeg": {}}},
        **responses(*KEYED, VoiceNotFound, *_MADE, model=OpenAIProblem),
    },
)
async def voice_sample(voice: str, farm: FarmDep, tenant: TenantDep) -> Response:
    """A few seconds of the voice (MP3), made once per engine through the farm, then kept."""
    data, content_type = await speech.voice_sample(farm, tenant, voice)
    return Response(data, media_type=content_type, headers={"Cache-Control": "max-age=86400"})
