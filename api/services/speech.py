"""OpenAI's speech endpoint on the farm. A speech request becomes a job of the tenant's like any
other (listed, counted against its limits, finished by the farm even if the caller goes away:
``X-Lyre-Job-Id`` names it), marked interactive so that its chunks go ahead of books'; its
audio is sent as the engine makes it (``shared.farm.follow``), encoded in the requested
format.

A voice's sample is a fixed sentence made the same way, once per voice and engine, and kept in
the object store for every tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator
from functools import partial

from starlette.concurrency import run_in_threadpool

from api.errors import (
    ApiError,
    InvalidInput,
    SpeechFailed,
    SpeechRefused,
    SpeechStalled,
    VoiceNotFound,
)
from api.openai_shapes import SpeechCreate
from api.schemas import JobCreate
from api.services.jobs import submit
from shared.audio.stream import StreamEncoder
from shared.farm.context import FarmContext
from shared.farm.follow import JobAudio, JobEnded
from shared.infra.models import Job, Tenant
from shared.infra.settings import ORPHEUS_HUB_ID
from shared.infra.storage import voice_sample_key
from shared.speech.factory import resolve_engine_name
from shared.text.voices import find_voice

SAMPLE_TEXT = "Hello! This is how I sound reading your books, articles and scripts aloud."
# The job's own files (GET /v1/jobs/{id}/audio) in the farm's format nearest the request's
JOB_FORMATS = {"mp3": "mp3", "opus": "opus", "aac": "m4b", "flac": "flac", "wav": "wav"}
JOB_FORMATS["pcm"] = "wav"  # raw samples are not a file to keep
INSTRUCTIONS_IGNORED = "instructions were ignored: Lyre's voices do not take instructions"


def submit_speech(farm: FarmContext, tenant: Tenant, body: SpeechCreate) -> Job:
    """The request as an interactive job of the tenant's (its daily characters counted)."""
    voice = find_voice(body.voice)
    assert voice is not None, "SpeechCreate checks the voice"
    request = JobCreate(
        text=body.input,
        voice=voice,
        format=JOB_FORMATS[body.response_format],  # type: ignore[arg-type]
        title=_title(body.input),
        seed=body.seed,
        metadata={"openai": body.model_dump(exclude={"input", "instructions"})},
    )
    try:
        return submit(farm, tenant, request, None, interactive=True)
    except InvalidInput as exc:  # a text with nothing to say
        raise SpeechRefused(exc.detail) from None


def _title(text: str) -> str:
    words = " ".join(text.split())
    return "Speech: " + (words if len(words) <= 60 else words[:59] + "…")


class SpeechAudio:
    """A job's audio in one of OpenAI's formats as the farm makes it: iterate :func:`stream`."""

    def __init__(self, farm: FarmContext, job: Job, fmt: str, speed: float = 1.0) -> None:
        self.job_id = job.id
        self.audio = JobAudio(farm, job.id)
        self.encoder = StreamEncoder(fmt, farm.settings.audio.bitrate_kbps, speed)

    def stalled(self, stall_s: float) -> SpeechStalled:
        return SpeechStalled(
            f"no audio from the farm for {stall_s:g} s (is a gpu worker running?); the job "
            f"goes on: GET /v1/jobs/{self.job_id}"
        )


async def stream(farm: FarmContext, audio: SpeechAudio) -> AsyncIterator[bytes]:
    """The audio's bytes as they are encoded (the encoding in the thread pool); a farm that
    makes nothing new for ``speech.stall_s`` ends it."""
    stall_s = farm.settings.speech.stall_s
    heard = time.monotonic()
    try:
        async for pcm in audio.audio.pcm():
            if len(pcm):
                heard = time.monotonic()
                data = await run_in_threadpool(audio.encoder.write, pcm)
                if data:
                    yield data
            elif time.monotonic() - heard > stall_s:
                raise audio.stalled(stall_s)
    except JobEnded as exc:
        raise SpeechFailed(f"the farm could not make the speech: {exc}") from None
    yield await run_in_threadpool(audio.encoder.close)


async def first_and_rest(
    farm: FarmContext, audio: SpeechAudio
) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first bytes, and the rest to come: a failure before any audio is an ordinary error
    answer (its status and reason), one after it ends the stream."""
    rest = stream(farm, audio)
    try:
        return await anext(rest), rest
    except StopAsyncIteration:  # nothing at all to send
        return b"", rest


async def audio_body(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for data in rest:
        yield data


async def sse_body(first: bytes, rest: AsyncIterator[bytes], chars: int) -> AsyncIterator[bytes]:
    """OpenAI's speech events: a ``speech.audio.delta`` with each piece of the file in base64,
    then ``speech.audio.done`` with the usage. Lyre counts no tokens: ``input_tokens`` is the
    input's characters, ``output_tokens`` 0. A failure once events have gone out is an
    ``error`` event (OpenAI's error object) in place of ``speech.audio.done``."""
    try:
        async for data in audio_body(first, rest):
            if data:
                audio = base64.b64encode(data).decode()
                yield _event({"type": "speech.audio.delta", "audio": audio})
    except ApiError as exc:
        error = {"message": exc.detail, "type": "server_error", "param": None, "code": None}
        yield _event({"type": "error", "error": error})
        return
    usage = {"input_tokens": chars, "output_tokens": 0, "total_tokens": chars}
    yield _event({"type": "speech.audio.done", "usage": usage})


def _event(data: dict[str, object]) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


# --- a voice's sample ---------------------------------------------------------------------------


async def voice_sample(farm: FarmContext, tenant: Tenant, voice: str) -> tuple[bytes, str]:
    """A few seconds of ``voice`` (a Lyre voice or one of OpenAI's names) saying
    :data:`SAMPLE_TEXT`, as MP3: the object store's copy, or made now through the farm as an
    interactive job of the tenant's, kept for next time. :class:`VoiceNotFound` for a voice
    that is not one; waits, without holding a thread, until the sample is made (seconds)."""
    found = find_voice(voice)
    if found is None:
        raise VoiceNotFound(f"no voice {voice!r}: GET /v1/audio/voices lists them")
    key = voice_sample_key(_speaker(farm), found, SAMPLE_TEXT)
    sample = await run_in_threadpool(farm.store.find_bytes, key)
    if sample is None:
        body = JobCreate(text=SAMPLE_TEXT, voice=found, format="mp3", title=f"Sample: {found}")
        job = await run_in_threadpool(partial(submit, farm, tenant, body, None, interactive=True))
        sample = b"".join([part async for part in stream(farm, SpeechAudio(farm, job, "mp3"))])
        await run_in_threadpool(farm.store.put_bytes, key, sample)
    return sample, "audio/mpeg"


def _speaker(farm: FarmContext) -> str:
    """What speaks on this farm: the engine, and for Orpheus its model (a new model or engine
    makes new samples)."""
    engine = resolve_engine_name(farm.settings)[0]
    if engine != "orpheus":
        return engine
    model = farm.settings.orpheus.model or ORPHEUS_HUB_ID
    return f"orpheus-{hashlib.sha256(model.encode()).hexdigest()[:12]}"
