"""``/v1/audio/speech/ws``: speech for voice applications, text in as it is written, audio out
as it is made.

The client opens the socket (its key in ``Authorization: Bearer …``, or in the first message)
and sends JSON messages: ``start`` first (``voice``, optional ``key``, ``seed``), then
``text`` (any piece of it, as a language model writes it), ``mark`` (a named point in the
text: its event comes when everything before it has been heard), ``flush`` (say what is
buffered now) and ``close`` (flush, finish, hang up). Complete sentences are spoken as soon as
they are in; each piece of text spoken is an interactive job of the tenant's, as a speech
request is (listed, limited, counted).

The server sends binary messages of PCM (24 kHz, 16-bit little-endian, mono) as the engine makes
it (``shared.farm.follow``), and JSON events: ``started``, ``segment`` (a piece of text became a
job), ``chunk`` (a chunk's audio begins), ``mark``, ``done``, ``error``. A refusal closes the
socket with ``4000 + the HTTP status`` it would have had (4400, 4401, 4429 …) after an
``error`` event saying why.

Nothing grows without bound, and the socket is read all the time (the client's pings are
answered while the speech plays): the text waiting to be spoken is kept, up to
``speech.ws_text_chars`` (past it the socket is not read, and the client's writes wait); at
most ``speech.ws_ahead`` pieces of it are jobs at once, the one being heard and the next, so
that the farm makes the next while this one plays; the audio is made only as fast as the
client reads it (a client that reads nothing for ``speech.ws_send_timeout_s`` is hung up on).
A job already submitted goes on if the client leaves, as a speech request's does.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError, NotAuthenticated, SpeechFailed, SpeechRefused, SpeechStalled
from api.openai_shapes import MAX_INPUT_CHARS, SpeechCreate
from api.services import rates
from api.services.speech import submit_speech
from shared.audio import SAMPLE_RATE
from shared.farm.context import FarmContext
from shared.farm.follow import JobAudio, JobEnded
from shared.farm.tenants import tenant_for_key
from shared.infra.models import Job, Tenant
from shared.text.voices import find_voice

# the end of a sentence: its mark, any closing quotes or brackets, then space
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+")


class SessionClosed(Exception):
    """The client hung up."""


@dataclass
class Segment:
    """A piece of the text spoken as one job, and the marks reached when it has been heard."""

    text: str
    job: Job | None = None
    marks: list[str] = field(default_factory=list)


class VoiceSession:
    def __init__(self, farm: FarmContext, websocket: WebSocket) -> None:
        self.farm, self.ws = farm, websocket
        self.settings = farm.settings.speech
        self.buffer = ""  # text received without a sentence end yet
        self.waiting: deque[Segment] = deque()  # whole pieces of text, not yet jobs
        self.chars_waiting = 0
        self.changed = asyncio.Event()  # text came, or the client closed
        self.room = asyncio.Event()  # the text waiting is under its bound
        self.room.set()
        self.closed = False  # the client sent close (or its side failed)
        self.tenant: Tenant | None = None
        self.voice, self.seed = "tara", None
        self.failure: SessionClosed | ApiError | None = None  # the receiving side's end

    async def run(self) -> None:
        await self.ws.accept()
        try:
            await self._start()
            receiving = asyncio.create_task(self._receive())
            try:
                await self._speak()
            finally:
                receiving.cancel()
            await self._event("done")
            await self.ws.close(1000)
        except SessionClosed:
            return
        except ApiError as exc:
            await self._refuse(exc)

    # --- the client's side ---------------------------------------------------------------

    async def _start(self) -> None:
        first = await self._message()
        if first.get("type") != "start":
            raise SpeechRefused('the first message must be {"type": "start", "voice": …}')
        key = first.get("key") or _bearer(self.ws)
        if not isinstance(key, str) or not key:
            raise NotAuthenticated()
        self.tenant = await run_in_threadpool(self._tenant, key)
        self.voice = find_voice(self._checked(first).voice) or self.voice  # OpenAI's names too
        self.seed = first.get("seed")
        await self._event("started", voice=self.voice, sample_rate=SAMPLE_RATE, format="s16le")

    def _tenant(self, key: str) -> Tenant:
        with self.farm.sessions() as session:
            tenant = tenant_for_key(session, key)
        if tenant is None:
            raise NotAuthenticated("the API key is not valid")
        rates.count_request(self.farm, tenant)
        return tenant

    def _checked(self, message: dict[str, Any], text: str = "…") -> SpeechCreate:
        """The voice, seed and text as a speech request would have them."""
        fields = {"voice": message.get("voice", self.voice), "seed": message.get("seed", self.seed)}
        try:
            return SpeechCreate(model="tts-1", input=text, response_format="pcm", **fields)
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SpeechRefused(reasons) from None

    async def _receive(self) -> None:
        """Text into pieces waiting to be spoken, until ``close``; read on while the speech
        plays (the client's pings are answered), paused only past ``speech.ws_text_chars``."""
        try:
            while True:
                await self.room.wait()
                message = await self._message()
                kind = message.get("type")
                if kind == "text":
                    self._text(message.get("text"))
                elif kind in ("flush", "close", "mark"):
                    self._cut(self.buffer)
                    if kind == "mark":
                        self._wait(Segment("", marks=[str(message.get("name", ""))]))
                    if kind == "close":
                        break
                else:
                    raise SpeechRefused(f"unknown message type {kind!r}: text, mark, flush, close")
        except (SessionClosed, ApiError) as exc:
            self.failure = exc  # what was accepted is still spoken, then the error
        self.closed = True
        self.changed.set()

    def _text(self, text: object) -> None:
        if not isinstance(text, str):
            raise SpeechRefused('a text message is {"type": "text", "text": "…"}')
        self.buffer += text
        ends = list(SENTENCE_END.finditer(self.buffer))
        if ends:  # every whole sentence now; the rest waits for its end
            self._cut(self.buffer[: ends[-1].end()])
        while len(self.buffer) > MAX_INPUT_CHARS:  # no sentence end in sight: at a space
            cut = self.buffer.rfind(" ", 0, MAX_INPUT_CHARS) + 1 or MAX_INPUT_CHARS
            self._cut(self.buffer[:cut])

    def _cut(self, text: str) -> None:
        """``text``, the start of the buffer, to be spoken as a job of its own."""
        self.buffer = self.buffer[len(text) :]
        if text.strip():
            self._wait(Segment(text))

    def _wait(self, segment: Segment) -> None:
        self.waiting.append(segment)
        self.chars_waiting += len(segment.text)
        if self.chars_waiting > self.settings.ws_text_chars:
            self.room.clear()  # the client's writes wait until the speech catches up
        self.changed.set()

    async def _message(self) -> dict[str, Any]:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise SessionClosed()
        try:
            data = json.loads(message.get("text") or "")
        except json.JSONDecodeError:
            raise SpeechRefused('messages are JSON text, such as {"type": "text", …}') from None
        if not isinstance(data, dict):
            raise SpeechRefused('messages are JSON objects, such as {"type": "text", …}')
        return data

    # --- the server's side ---------------------------------------------------------------

    async def _speak(self) -> None:
        """The pieces' audio in turn, each one's marks after it, until the client's ``close``;
        up to ``speech.ws_ahead`` pieces are jobs at once (the one heard and those after it),
        so that the farm makes the next while this one plays, and no more."""
        ahead: deque[Segment] = deque()
        while True:
            while len(ahead) < self.settings.ws_ahead and self.waiting:
                ahead.append(await self._submitted(self.waiting.popleft()))
            if ahead:
                segment = ahead.popleft()
                if segment.job is not None:
                    await self._event("segment", job_id=str(segment.job.id), text=segment.text)
                    await self._play(segment.job)
                for name in segment.marks:
                    await self._event("mark", name=name)
            elif self.closed:
                break
            else:
                self.changed.clear()
                await self.changed.wait()
        if self.failure is not None:
            raise self.failure

    async def _submitted(self, segment: Segment) -> Segment:
        """The piece as a job (none for a mark, or for text with nothing to say in it)."""
        self.chars_waiting -= len(segment.text)
        if self.chars_waiting <= self.settings.ws_text_chars:
            self.room.set()
        if not segment.text:
            return segment
        assert self.tenant is not None
        try:
            body = self._checked({}, segment.text)
            job = await run_in_threadpool(submit_speech, self.farm, self.tenant, body)
        except SpeechRefused:  # nothing to say in it ("…", a stray "**"): nothing to hear
            return Segment(segment.text, None, segment.marks)
        return Segment(segment.text, job, segment.marks)

    async def _play(self, job: Job) -> None:
        audio, begun = JobAudio(self.farm, job.id), 0
        heard = time.monotonic()
        try:
            async for pcm in audio.pcm():
                if audio.begun > begun:
                    begun = audio.begun
                    await self._event("chunk", job_id=str(job.id), chunk=begun - 1)
                if len(pcm):
                    heard = time.monotonic()
                    await self._send(_s16le(pcm))
                elif time.monotonic() - heard > self.settings.stall_s:
                    raise SpeechStalled(f"no audio from the farm for {self.settings.stall_s:g} s")
        except JobEnded as exc:
            raise SpeechFailed(f"the farm could not make the speech: {exc}") from None

    async def _send(self, data: bytes) -> None:
        try:
            await asyncio.wait_for(self.ws.send_bytes(data), self.settings.ws_send_timeout_s)
        except (TimeoutError, WebSocketDisconnect, RuntimeError):
            raise SessionClosed() from None  # a client that does not read is hung up on

    async def _event(self, kind: str, **fields: Any) -> None:
        try:
            await self.ws.send_json({"type": kind, **fields})
        except (WebSocketDisconnect, RuntimeError):
            raise SessionClosed() from None

    async def _refuse(self, exc: ApiError) -> None:
        try:
            await self._event("error", status=exc.status_code, message=exc.detail)
            await self.ws.close(4000 + exc.status_code, exc.detail[:120])
        except SessionClosed:
            pass


def _bearer(websocket: WebSocket) -> str | None:
    scheme, _, key = websocket.headers.get("authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else None


def _s16le(pcm: np.ndarray) -> bytes:
    return (np.clip(pcm, -1, 1) * 32767).round().astype("<i2").tobytes()
