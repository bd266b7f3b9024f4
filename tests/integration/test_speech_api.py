"""OpenAI's speech endpoint in this process (TestClient, real Postgres, Redis and S3): every bad
request refused with its reason in OpenAI's shape and nothing made; the model and voice lists;
a request's audio while a thread works the farm's stages, as the workers would."""

from __future__ import annotations

import base64
import io
import json
import threading
import time

import pytest
import soundfile
from sqlalchemy import select

from api.openai_shapes import MODELS
from shared.farm.jobs import cancel_job
from shared.farm.tenants import create_key
from shared.infra.models import Job

HELLO = {"model": "tts-1", "input": "Hello there. This is Lyre.", "voice": "alloy"}


@pytest.fixture()
def auth(burst):
    with burst.farm.sessions() as session:
        _, key = create_key(session, "acme")
    return {"Authorization": f"Bearer {key}"}


def jobs_of(client, auth) -> list[dict]:
    return client.get("/v1/jobs", headers=auth).json()["items"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"model": "tts-2"},
            "model: Input should be 'tts-1', 'tts-1-hd', 'gpt-4o-mini-tts' or 'orpheus'",
        ),
        ({"input": "x" * 4097}, "input: String should have at most 4096 characters"),
        ({"input": " \n "}, "input: input is only white space: there is nothing to say"),
        ({"input": ""}, "input: String should have at least 1 character"),
        (
            {"response_format": "ogg"},
            "response_format: Input should be 'mp3', 'opus', 'aac', 'flac', 'wav' or 'pcm'",
        ),
        ({"speed": 4.5}, "speed: Input should be less than or equal to 4"),
        ({"speed": 0.1}, "speed: Input should be greater than or equal to 0.25"),
        ({"speed": "fast"}, "speed: Input should be a valid number"),
        ({"voice": "bob"}, "voice: unknown voice 'bob': Lyre's voices are tara, leah, jess,"),
        ({"voice": {"id": "voice_1234"}}, "voice: unknown voice 'voice_1234'"),
        ({"stream_format": "chunks"}, "stream_format: Input should be 'audio' or 'sse'"),
        ({"model": None, "input": None}, "model: Input should be 'tts-1'"),
        ({"seed": 1.5}, "seed: Input should be a valid integer"),
    ],
)
def test_a_bad_request_is_refused_with_its_reason_and_makes_nothing(client, auth, fields, reason):
    response = client.post("/v1/audio/speech", json={**HELLO, **fields}, headers=auth)
    assert response.status_code == 400
    body = response.json()
    assert reason in body["error"]["message"], body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["detail"] == body["error"]["message"]  # Lyre's shape beside OpenAI's
    assert jobs_of(client, auth) == []


def test_a_body_that_is_not_json_or_lacks_fields_is_refused(client, auth):
    json_type = {**auth, "content-type": "application/json"}
    response = client.post("/v1/audio/speech", content=b"{not json", headers=json_type)
    assert response.status_code == 400 and "JSON decode error" in response.json()["detail"]
    response = client.post("/v1/audio/speech", json={"model": "tts-1"}, headers=auth)
    assert response.status_code == 400
    assert response.json()["detail"] == "input: Field required; voice: Field required"


def test_a_missing_or_wrong_key_is_refused_in_openais_shape(client):
    response = client.post("/v1/audio/speech", json=HELLO)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "authentication_error"
    wrong = {"Authorization": "Bearer lyre_nope"}
    for path in ("/v1/models", "/v1/models/tts-1", "/v1/voices/tara/sample"):
        assert client.get(path, headers=wrong).status_code == 401, path


def test_the_models_in_openais_list_shape(client, auth):
    listed = client.get("/v1/models", headers=auth).json()
    assert listed["object"] == "list"
    assert [m["id"] for m in listed["data"]] == list(MODELS)
    assert all(
        m["object"] == "model" and isinstance(m["created"], int) and m["owned_by"] == "lyre"
        for m in listed["data"]
    )
    assert client.get("/v1/models/orpheus", headers=auth).json() == listed["data"][3]
    missing = client.get("/v1/models/whisper-1", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"].startswith("no model 'whisper-1': the models are")


def test_the_voices_and_models_as_open_webui_reads_them_need_no_key(client):
    voices = client.get("/v1/audio/voices").json()["voices"]
    assert [v["id"] for v in voices][:2] == ["tara", "leah"] and len(voices) == 8
    assert voices[0] == {"id": "tara", "name": "Tara", "openai_names": ["alloy", "marin"]}
    models = client.get("/v1/audio/models").json()["models"]
    assert [m["id"] for m in models] == list(MODELS)


def test_speech_is_an_interactive_job_and_its_audio_comes_back(client, auth, working):
    fields = {**HELLO, "response_format": "wav", "instructions": "Speak warmly."}
    response = client.post("/v1/audio/speech", json=fields, headers=auth)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-lyre-voice"] == "tara"  # alloy's Lyre voice
    assert "instructions were ignored" in response.headers["x-lyre-warning"]
    samples, rate = soundfile.read(io.BytesIO(response.content))
    assert rate == 24000 and len(samples) > 0.5 * rate
    (job,) = jobs_of(client, auth)
    assert job["id"] == response.headers["x-lyre-job-id"] and job["voice"] == "tara"
    assert job["metadata"]["openai"]["model"] == "tts-1"


def test_speech_with_a_seed_is_the_same_bytes_again(client, auth, working):
    """Lyre's own ``seed`` field, as OpenAI's clients send an extra one: Ogg Opus, whose
    stream serial number would otherwise be random; the job shows the seed."""
    fields = {**HELLO, "input": "She sells sea shells. Hush!", "response_format": "opus"}
    first, again = (  # 11.0 is the integer 11, in JSON Schema as in Lyre
        client.post("/v1/audio/speech", json={**fields, "seed": seed}, headers=auth)
        for seed in (11, 11.0)
    )
    assert first.status_code == again.status_code == 200, first.text
    assert first.content == again.content and first.content[:4] == b"OggS"
    assert [job["seed"] for job in jobs_of(client, auth)] == [11, 11]
    refused = client.post("/v1/audio/speech", json={**fields, "seed": -3}, headers=auth)
    assert refused.status_code == 400
    assert "seed: Input should be greater than or equal to 0" in refused.json()["detail"]


def test_speech_as_openais_server_sent_events(client, auth, working):
    fields = {**HELLO, "response_format": "pcm", "stream_format": "sse", "speed": 2.0}
    with client.stream("POST", "/v1/audio/speech", json=fields, headers=auth) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in response.iter_lines() if line]
    *deltas, done = events
    assert deltas and {e["type"] for e in deltas} == {"speech.audio.delta"}
    pcm = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert len(pcm) % 2 == 0 and len(pcm) > 0.3 * 48000  # 16-bit samples, 24 kHz
    assert done == {
        "type": "speech.audio.done",
        "usage": {"input_tokens": 26, "output_tokens": 0, "total_tokens": 26},
    }


def test_a_voices_sample_is_made_once_then_kept(client, auth, working):
    first = client.get("/v1/voices/leo/sample", headers=auth)
    assert first.status_code == 200 and first.headers["content-type"] == "audio/mpeg"
    assert len(jobs_of(client, auth)) == 1
    again = client.get("/v1/voices/onyx/sample", headers=auth)  # OpenAI's name for leo
    assert again.content == first.content and len(jobs_of(client, auth)) == 1
    missing = client.get("/v1/voices/bob/sample", headers=auth)
    assert missing.status_code == 404 and "no voice 'bob'" in missing.json()["detail"]


def test_a_farm_that_makes_nothing_ends_the_request_with_504_and_the_job_goes_on(
    client, auth, burst
):
    speech = burst.farm.settings.speech.model_copy(update={"stall_s": 0.3})
    burst.farm.settings = burst.farm.settings.model_copy(update={"speech": speech})
    response = client.post("/v1/audio/speech", json=HELLO, headers=auth)
    assert response.status_code == 504
    (job,) = jobs_of(client, auth)
    assert response.json()["error"]["message"] == (
        "no audio from the farm for 0.3 s (is a gpu worker running?); the job goes on: "
        f"GET /v1/jobs/{job['id']}"
    )
    assert job["status"] == "queued"


def test_a_job_cancelled_before_its_audio_is_a_502_with_the_reason(client, auth, burst):
    def cancel_when_submitted() -> None:
        with burst.farm.sessions() as session:
            while not (found := session.scalars(select(Job.id)).all()):
                time.sleep(0.02)
        cancel_job(burst.farm, found[0])

    canceller = threading.Thread(target=cancel_when_submitted, daemon=True)
    canceller.start()
    response = client.post("/v1/audio/speech", json=HELLO, headers=auth)
    canceller.join(timeout=10)
    assert response.status_code == 502
    assert response.json()["error"] == {
        "message": "the farm could not make the speech: the job cancelled",
        "type": "server_error",
        "param": None,
        "code": None,
    }
