"""``/v1/audio/speech/ws`` in this process (Starlette's WebSocket test client, real Postgres,
Redis and S3, the farm's stages on a thread with a live publisher): text streamed in word by
word is spoken sentence by sentence as it comes; PCM and events come back in order; the key in
a header or the first message; every refusal an ``error`` event and a 44xx close with its
reason, after the audio of what was already accepted; a client that stops reading is hung up
on, and nothing waits for it in memory."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from starlette.websockets import WebSocketDisconnect

from api.services.voice_session import SessionClosed, VoiceSession
from shared.farm.tenants import create_key

SAMPLE_RATE = 24000
REPLY = "Hello there! The lighthouse keeper climbs the stairs. He trims the wick tonight"


@pytest.fixture()
def key(burst) -> str:
    with burst.farm.sessions() as session:
        return create_key(session, "acme")[1]


def receive_all(ws) -> tuple[list[dict], bytes]:
    """Every event and the PCM until the server closes; (events in order, PCM)."""
    events, pcm = [], bytearray()
    while True:
        try:
            message = ws.receive()
        except WebSocketDisconnect:
            break
        if message["type"] == "websocket.close":
            events.append({"type": "closed", "code": message.get("code")})
            break
        if message.get("bytes") is not None:
            if not events or events[-1]["type"] != "audio":
                events.append({"type": "audio"})
            pcm += message["bytes"]
        else:
            events.append(json.loads(message["text"]))
    return events, bytes(pcm)


def test_text_streamed_in_is_spoken_sentence_by_sentence_with_marks(client, key, working):
    headers = {"Authorization": f"Bearer {key}"}
    with client.websocket_connect("/v1/audio/speech/ws", headers=headers) as ws:
        ws.send_json({"type": "start", "voice": "alloy", "seed": 3})
        for word in REPLY.split(" "):  # as a language model writes its reply
            ws.send_json({"type": "text", "text": word + " "})
        ws.send_json({"type": "mark", "name": "reply-1"})
        ws.send_json({"type": "text", "text": "** … "})  # nothing to say: nothing to hear
        ws.send_json({"type": "text", "text": "Goodbye."})
        ws.send_json({"type": "close"})
        events, pcm = receive_all(ws)
    kinds = [e["type"] for e in events]
    assert events[0] == {
        "type": "started",
        "voice": "tara",
        "sample_rate": 24000,
        "format": "s16le",
    }
    segments = [e["text"] for e in events if e["type"] == "segment"]
    # whole sentences as soon as their end came; the unfinished one at the mark; then the rest
    assert segments == [
        "Hello there! ",
        "The lighthouse keeper climbs the stairs. ",
        "He trims the wick tonight ",
        "Goodbye.",
    ]
    assert kinds[-2:] == ["done", "closed"] and events[-1]["code"] == 1000
    mark = kinds.index("mark")
    assert kinds.index("segment", mark) > mark > kinds.index("audio")  # after its text's audio
    chunks = [e for e in events if e["type"] == "chunk"]
    assert len(chunks) >= 4 and all(c["chunk"] >= 0 for c in chunks)
    samples = np.frombuffer(pcm, "<i2")
    assert len(samples) > 3 * SAMPLE_RATE and np.abs(samples).max() > 1000  # speech, 16-bit


def test_the_key_may_come_in_the_first_message_and_a_bad_one_is_refused(client, key, working):
    with client.websocket_connect("/v1/audio/speech/ws") as ws:
        ws.send_json({"type": "start", "voice": "leah", "key": key})
        ws.send_json({"type": "text", "text": "Hi."})
        ws.send_json({"type": "close"})
        events, pcm = receive_all(ws)
    assert events[0]["voice"] == "leah" and events[-1]["code"] == 1000 and pcm
    with client.websocket_connect("/v1/audio/speech/ws") as ws:
        ws.send_json({"type": "start", "voice": "leah", "key": "lyre_nope"})
        events, _ = receive_all(ws)
    assert events == [
        {"type": "error", "status": 401, "message": "the API key is not valid"},
        {"type": "closed", "code": 4401},
    ]


@pytest.mark.parametrize(
    ("messages", "reason"),
    [
        ([{"type": "text", "text": "Hi."}], 'the first message must be {"type": "start"'),
        ([{"type": "start", "voice": "bob"}], "voice: Value error, unknown voice 'bob'"),
        ([{"type": "start", "seed": -1}], "seed: Input should be greater than or equal to 0"),
        ([{"type": "start"}, {"type": "shout"}], "unknown message type 'shout'"),
        ([{"type": "start"}, {"type": "text", "text": 7}], 'a text message is {"type": "text"'),
        ([{"type": "start"}, "not json"], "messages are JSON text"),
        ([{"type": "start"}, [1, 2]], "messages are JSON objects"),
    ],
)
def test_a_bad_message_is_refused_with_its_reason(client, key, messages, reason):
    headers = {"Authorization": f"Bearer {key}"}
    with client.websocket_connect("/v1/audio/speech/ws", headers=headers) as ws:
        for message in messages:
            if isinstance(message, str):
                ws.send_text(message)
            else:
                ws.send_json(message)
        events, _ = receive_all(ws)
    error, closed = events[-2:]
    assert error["type"] == "error" and error["status"] == 400, events
    assert error["message"].startswith(reason) or reason in error["message"], error
    assert closed == {"type": "closed", "code": 4400}


def test_what_was_accepted_is_spoken_before_a_later_refusal(client, key, working):
    headers = {"Authorization": f"Bearer {key}"}
    with client.websocket_connect("/v1/audio/speech/ws", headers=headers) as ws:
        ws.send_json({"type": "start"})
        ws.send_json({"type": "text", "text": "This is said. "})
        ws.send_json({"type": "dance"})
        events, pcm = receive_all(ws)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["started", "segment", "chunk"] and pcm
    assert kinds[-2:] == ["error", "closed"] and events[-1]["code"] == 4400


class SilentClient:
    """A socket whose client reads nothing: every send waits for ever."""

    async def send_bytes(self, data: bytes) -> None:
        await asyncio.Event().wait()


def test_a_client_that_reads_nothing_is_hung_up_on(burst):
    session = VoiceSession(burst.farm, SilentClient())  # type: ignore[arg-type]
    session.settings = session.settings.model_copy(update={"ws_send_timeout_s": 0.05})
    with pytest.raises(SessionClosed):
        asyncio.run(session._send(b"\0\0" * 2400))
