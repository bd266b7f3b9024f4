"""OpenAI's speech endpoint on the native farm, through OpenAI's own Python client, as a program
written for OpenAI would call it with only the base URL changed: every format read back by a
reader other than FFmpeg (which wrote it), the audio streamed while the farm still works,
OpenAI's server-sent events, a voice's sample made once, and OpenAI's errors.

The gpu worker runs the simulated engine (a tone as long as Orpheus's speech would be, each
chunk made in as many engine steps as Orpheus's tokens, 1 ms a step): a chunk's time follows
its length whatever the machine's load, so that what is still being made when the first audio
is heard is known. espeak-ng makes a chunk in a few milliseconds, faster than a message goes
from one worker to the next."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import mutagen.aac
import mutagen.mp3
import openai
import pytest
import soundfile
import websockets
from openai import OpenAI
from sqlalchemy import select

from shared.audio.programme import pause_samples
from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import Chunk, Job
from shared.infra.settings import AudioSettings
from shared.text.chunking import Boundary
from tests.e2e.conftest import RunningFarm

pytestmark = pytest.mark.slow

RATE = 24000
HELLO = "Hello there. This is Lyre, speaking for a program written for OpenAI."
# one paragraph of 3,000 characters: chunks of up to 100 characters, then 200, then 400 (a
# speech request's ramp); the farm takes seconds over it, its first chunk a fraction of one
STORY = " ".join(f"Sentence {i} of the answer is spoken in a chunk with others." for i in range(48))


@pytest.fixture(scope="module")
def farm(process_env, tmp_path_factory) -> Iterator[RunningFarm]:
    """The api, the dispatcher and the workers a request's audio needs, started at once (the
    jobs' own files are not asked for here: no stitch worker)."""
    env = {
        **process_env,
        "LYRE_ENGINE": "simulated",
        "LYRE_SIMULATED__STEP_MS": "1",
        "LYRE_CHUNKING__MAX_CHARS": "400",
    }
    running = RunningFarm(env, tmp_path_factory.mktemp("speech-farm"))
    try:
        running.start_at_once(["api", "dispatcher", "gpu-worker", "cpu-worker"])
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def client(farm) -> Iterator[OpenAI]:
    key = farm.headers["Authorization"].removeprefix("Bearer ")
    with OpenAI(base_url=f"{farm.api}/v1", api_key=key, max_retries=0, timeout=120) as client:
        yield client


def read_back(fmt: str, data: bytes) -> tuple[float, int]:
    """(seconds, sample rate) as libsndfile or mutagen reads the file; pcm by its length."""
    if fmt == "pcm":
        assert len(data) % 2 == 0  # 16-bit samples
        return len(data) / 2 / RATE, RATE
    if fmt in ("wav", "flac", "opus"):
        samples, rate = soundfile.read(io.BytesIO(data))
        return len(samples) / rate, rate
    info = (mutagen.mp3.MP3 if fmt == "mp3" else mutagen.aac.AAC)(io.BytesIO(data)).info
    return info.length, info.sample_rate


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_each_format_through_openais_client(client, fmt, tmp_path):
    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input=HELLO, response_format=fmt
    )
    assert speech.response.headers["x-lyre-voice"] == "tara"
    speech.write_to_file(tmp_path / "hello")  # as the README's example does
    seconds, rate = read_back(fmt, (tmp_path / "hello").read_bytes())
    assert rate == RATE
    assert 2.0 < seconds < 10.0  # a sentence and a half of speech


def test_the_audio_streams_while_the_farm_is_still_making_it(client, farm, tmp_path):
    """Once the request's first chunk is done the cpu worker is paused (SIGSTOP), so that no
    other chunk can be done: the first audio must reach the client all the same (the later
    chunks, of 200 and 400 characters, take two and four times the first's steps). Then it
    goes on, and the whole answer comes, at speed 1.5."""
    pieces: list[int] = []
    first_audio = threading.Event()

    def listen() -> None:
        with client.audio.speech.with_streaming_response.create(
            model="gpt-4o-mini-tts", voice="leo", input=STORY, response_format="pcm", speed=1.5
        ) as response:
            for data in response.iter_bytes():
                pieces.append(len(data))
                first_audio.set()

    since = datetime.now(UTC)
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    job_id = wait_for(lambda: newest_job(since))
    wait_for(lambda: done_chunks(job_id) & {0})
    decoder = farm.children["cpu-worker"].pid
    os.killpg(decoder, signal.SIGSTOP)
    try:
        assert first_audio.wait(timeout=60), "no audio while the farm was still at work"
        rows = chunks(job_id)
        assert len({row.index for row in rows if row.status != "done"}) >= 2
    finally:
        os.killpg(decoder, signal.SIGCONT)
    listener.join(timeout=120)
    rows = wait_for(lambda: (r := chunks(job_id)) and all(x.status == "done" for x in r) and r)
    assert len(rows[0].text) < 100 < len(rows[1].text)  # a short first chunk: sooner audio
    made = sum(r.samples + pause_samples(Boundary(r.boundary), AudioSettings()) for r in rows)
    assert abs(sum(pieces) // 2 - made / 1.5) < 0.2 * RATE  # 16-bit samples, at speed 1.5
    path = tmp_path / "hello.mp3"  # the README's way of keeping a streamed answer
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="leo", input=HELLO
    ) as response:
        response.stream_to_file(path)
    assert read_back("mp3", path.read_bytes())[0] > 2.0


def test_the_answer_is_heard_as_the_engine_makes_it_with_no_chunk_stored(client, farm):
    """The cpu worker paused from the start (SIGSTOP): no chunk can be decoded or stored, and
    the whole answer comes all the same, from the engine's live stream; then the farm stores
    the job as any other."""
    since = datetime.now(UTC)
    decoder = farm.children["cpu-worker"].pid
    os.killpg(decoder, signal.SIGSTOP)
    try:
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="zoe", input=STORY, response_format="pcm"
        ) as response:
            pcm = b"".join(response.iter_bytes())
        job_id = newest_job(since)
        assert done_chunks(job_id) == set()  # heard, and none of it stored yet
    finally:
        os.killpg(decoder, signal.SIGCONT)
    rows = wait_for(lambda: (r := chunks(job_id)) and all(x.status == "done" for x in r) and r)
    made = sum(r.samples + pause_samples(Boundary(r.boundary), AudioSettings()) for r in rows)
    assert len(pcm) // 2 == made - pause_samples(Boundary(rows[0].boundary), AudioSettings())
    # its first chunk went to the GPU alone, the next at the dispatcher's very next tick (0.07 s
    # here), not when something else woke it (chunk 0 made: 0.5 s) or a period (1 s) later
    assert 0 < (rows[1].sent_at - rows[0].sent_at).total_seconds() < 0.3


def wait_for(found: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.01)
    return value


def newest_job(since: datetime) -> uuid.UUID | None:
    with session_scope() as session:
        return session.scalar(select(Job.id).where(Job.created_at >= since))


def chunks(job_id: uuid.UUID) -> list[Chunk]:
    with session_scope() as session:
        found = session.scalars(select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.index))
        return list(found)


def done_chunks(job_id: uuid.UUID) -> set[int]:
    return {row.index for row in chunks(job_id) if row.status == "done"}


def test_openais_server_sent_events(client):
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts",
        voice="nova",
        input=HELLO,
        response_format="mp3",
        stream_format="sse",
        instructions="Cheerfully.",
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert "ignored" in response.headers["x-lyre-warning"]
        events = [json.loads(line.removeprefix("data: ")) for line in response.iter_lines() if line]
    *deltas, done = events
    assert deltas and all(e["type"] == "speech.audio.delta" for e in deltas)
    assert done["type"] == "speech.audio.done" and done["usage"]["input_tokens"] == len(HELLO)
    mp3 = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert read_back("mp3", mp3)[0] > 2.0


def test_a_voices_sample_is_made_once_and_then_served_from_the_store(farm):
    def jobs() -> int:
        listed = httpx.get(f"{farm.api}/v1/jobs", headers=farm.headers, timeout=10).json()
        return len(listed["items"])

    before = jobs()
    first = httpx.get(f"{farm.api}/v1/voices/zoe/sample", headers=farm.headers, timeout=60)
    assert first.status_code == 200 and first.headers["content-type"] == "audio/mpeg"
    assert jobs() == before + 1  # made through the farm, as a job of the tenant's
    again = httpx.get(f"{farm.api}/v1/voices/zoe/sample", headers=farm.headers, timeout=60)
    assert again.content == first.content and jobs() == before + 1  # no new job: the store's
    seconds, rate = read_back("mp3", again.content)
    assert rate == RATE and 1.0 < seconds < 15.0
    missing = httpx.get(f"{farm.api}/v1/voices/nobody/sample", headers=farm.headers)
    assert missing.status_code == 404


def test_openais_errors_through_its_client(client, farm):
    assert [m.id for m in client.models.list()] == [
        "tts-1",
        "tts-1-hd",
        "gpt-4o-mini-tts",
        "orpheus",
    ]
    with OpenAI(base_url=f"{farm.api}/v1", api_key="lyre_not_a_key", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.audio.speech.create(model="tts-1", voice="alloy", input=HELLO)
    with pytest.raises(openai.BadRequestError, match="voice: unknown voice 'bob'"):
        client.audio.speech.create(model="tts-1", voice="bob", input=HELLO)
    with pytest.raises(openai.BadRequestError, match="at most 4096 characters"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="a" * 4097)


def test_a_websocket_speaks_text_as_it_is_written(farm):
    """A ``websockets`` client on the real server: text word by word, sentences spoken as
    they end, PCM and events back (a client that stops reading: tests/integration/
    test_voice_socket.py, whose socket's sends can be made to wait). A tenant of its own: the
    jobs of this module's other tests never finish (no stitch worker here), and a tenant's
    running jobs are limited (16), each sentence spoken here being one."""
    url = farm.api.replace("http", "ws") + "/v1/audio/speech/ws"
    with session_scope() as session:
        headers = {"Authorization": f"Bearer {create_key(session, 'voice-app')[1]}"}

    async def converse() -> tuple[list[dict], int]:
        async with websockets.connect(url, additional_headers=headers) as ws:
            await ws.send(json.dumps({"type": "start", "voice": "dan"}))
            for word in STORY[:600].split(" "):
                await ws.send(json.dumps({"type": "text", "text": word + " "}))
            await ws.send(json.dumps({"type": "close"}))
            events, pcm = [], 0
            async for message in ws:
                if isinstance(message, bytes):
                    pcm += len(message)
                else:
                    events.append(json.loads(message))
            return events, pcm

    events, pcm = asyncio.run(converse())
    assert events[0]["type"] == "started" and events[-1] == {"type": "done"}
    assert [e["type"] for e in events].count("segment") >= 6 and pcm > 10 * 2 * RATE
