"""Checks on every chunk through the REST API (TestClient, burst sender, real Postgres and S3,
espeak-ng made to misbehave by faults on demand): faulty takes are made again, chunks that fail
every take are reported with their words, reason and audio, and one is fixed by its own redo
while every other chunk's audio stays as it was."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
import soundfile
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.deps import get_farm
from shared.infra.checks_settings import ChecksSettings, FaultSettings
from shared.infra.models import Chunk, WebhookDelivery
from shared.infra.storage import chunk_audio_key, get_pcm
from tests.burst import BurstFarm
from tests.integration.test_api import key_for

BOOK = (
    "# The Harbour\n\nThe boats came in at dusk, one by one, their lamps low over the water. "
    "Old Tom counted them from the harbour wall, as he had done every evening for forty "
    "years.\n\n# The Storm\n\nBy midnight the wind had turned. Rain came down in sheets, and "
    "the sea rose over the breakwater. Nobody in the village slept.\n"
)


def farm_with(farm_settings, takes: int, kinds=("early", "loop", "babble", "silence", "skip")):
    """A burst farm whose espeak-ng spoils every chunk's first take (one fault each)."""
    update = {
        "faults": FaultSettings(rate=1.0, kinds=list(kinds)),
        "checks": ChecksSettings(takes=takes),
        "chunking": farm_settings.chunking.model_copy(update={"max_chars": 120}),
    }
    return BurstFarm(farm_settings.model_copy(update=update))


@pytest.fixture()
def client_for():
    made = []

    def client(burst):
        app = create_app()
        app.dependency_overrides[get_farm] = lambda: burst.farm
        made.append((burst, TestClient(app).__enter__()))
        return made[-1][1]

    yield client
    for burst, client in made:
        client.__exit__(None, None, None)
        burst.close()


def chunks(job_id):
    from shared.infra.db import session_scope

    with session_scope() as session:
        return list(
            session.scalars(select(Chunk).where(Chunk.job_id == job_id).order_by(Chunk.index))
        )


def test_every_faulty_take_is_made_again_and_the_job_reports_it(farm_settings, client_for):
    burst = farm_with(farm_settings, takes=3)
    client, auth = client_for(burst), key_for("checked")
    job = client.post("/v1/jobs", headers=auth, json={"text": BOOK, "seed": 7}).json()
    burst.drain()
    done = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert done["status"] == "succeeded", done["error"]
    rows = chunks(job["id"])
    assert done["checks"] == {"checked": len(rows), "retaken": len(rows), "suspects": 0}
    for row in rows:  # the first take failed a check, at generation or decode; the next passed
        first = [t for t in row.takes if t["take"] == 0]
        assert any(t["reasons"] for t in first) and row.take == 1 and row.suspect is None
    assert {c["checks"]["suspects"] == [] for c in done["chapters"]} == {True}
    listing = next(o for o in done["outputs"] if o["kind"] == "chapters")
    chapters = httpx.get(listing["url"]).json()["chapters"]
    assert [c["checks"]["retaken"] for c in chapters] == [c["checks"]["checked"] for c in chapters]


def test_a_chunk_failing_every_take_is_suspect_heard_and_fixed_by_its_own_redo(
    farm_settings, client_for
):
    burst = farm_with(farm_settings, takes=1, kinds=("early",))
    client, auth = client_for(burst), key_for("checked")
    body = {"text": BOOK, "seed": 7, "webhook_url": "http://127.0.0.1:9/hook"}
    job = client.post("/v1/jobs", headers=auth, json=body).json()
    burst.drain()
    done = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    rows = chunks(job["id"])
    assert done["status"] == "succeeded" and done["checks"]["suspects"] == len(rows)
    heading, suspect, _ = done["chapters"][1]["checks"]["suspects"]  # its title is a chunk too
    assert heading["text"] == "The Storm"
    assert suspect["text"].startswith("By midnight the wind had turned.")
    assert "too short: " in suspect["reason"]
    with burst.farm.sessions() as session:
        events = session.scalars(
            select(WebhookDelivery.event_type).where(WebhookDelivery.job_id == job["id"])
        ).all()
    assert sorted(events) == ["job.needs_review", "job.succeeded"]
    heard = client.get(suspect["audio"], headers=auth)
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    pcm, rate = soundfile.read(io.BytesIO(heard.content), dtype="float32")
    stored = get_pcm(burst.farm.store, chunk_audio_key(job["id"], suspect["chunk"]))
    assert rate == 24000 and len(pcm) == len(stored)
    before = {r.index: get_pcm(burst.farm.store, chunk_audio_key(job["id"], r.index)) for r in rows}
    url = f"/v1/jobs/{job['id']}/chunks/{suspect['chunk']}/regenerate"
    redo = client.post(url, headers=auth, json={"text": "By midnight the wind had turned."})
    assert redo.status_code == 202, redo.text
    assert (redo.json()["version"], redo.json()["status"]) == (2, "running")
    chapter = redo.json()["chapters"][1]  # one of its chunks to make again
    assert chapter["chunks_done"] == chapter["chunks_total"] - 1
    burst.drain()
    after = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert after["status"] == "succeeded" and after["outputs_version"] == 2
    assert all(c["chunks_done"] == c["chunks_total"] for c in after["chapters"])
    assert after["checks"]["suspects"] == len(rows) - 1  # its next take is the engine's own
    for index, pcm in before.items():
        now = get_pcm(burst.farm.store, chunk_audio_key(job["id"], index))
        assert np.array_equal(now, pcm) == (index != suspect["chunk"]), index
    redone = next(r for r in chunks(job["id"]) if r.index == suspect["chunk"])
    assert (redone.text, redone.take, redone.suspect) == (
        "By midnight the wind had turned.",
        1,
        None,
    )


def test_chunk_redo_and_audio_errors_are_clear(farm_settings, client_for):
    burst = farm_with(farm_settings, takes=1, kinds=("early",))
    client, auth = client_for(burst), key_for("checked")
    job = client.post("/v1/jobs", headers=auth, json={"text": BOOK}).json()
    url = f"/v1/jobs/{job['id']}/chunks"
    assert client.post(f"{url}/0/regenerate", headers=auth, json={}).status_code == 409
    assert client.get(f"{url}/0/audio", headers=auth).status_code == 409  # not made yet
    burst.drain()
    assert client.post(f"{url}/99/regenerate", headers=auth, json={}).status_code == 404
    assert client.get(f"{url}/99/audio", headers=auth).status_code == 404
    assert client.post(f"{url}/-1/regenerate", headers=auth, json={}).status_code == 422
    long = client.post(f"{url}/0/regenerate", headers=auth, json={"text": BOOK})
    assert long.status_code == 422 and "redo its chapter" in long.json()["detail"]
    other = client.get(f"{url}/0/audio", headers=key_for("other"))
    assert other.status_code == 404


def test_the_page_lists_what_needs_a_listen_plays_it_and_redoes_it(farm_settings, client_for):
    from tests.integration.test_web import _csrf, sign_in

    burst = farm_with(farm_settings, takes=1, kinds=("loop",))
    client, auth = client_for(burst), key_for("checked")
    job = client.post("/v1/jobs", headers=auth, json={"text": BOOK}).json()
    burst.drain()
    sign_in(client, auth["Authorization"].removeprefix("Bearer "))
    page = client.get(f"/jobs/{job['id']}")
    assert page.status_code == 200 and "Needs a listen" in page.text
    assert "too long: " in page.text and "Redo chunk 4" in page.text
    heard = client.get(f"/jobs/{job['id']}/chunks/4/audio")
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    assert soundfile.info(io.BytesIO(heard.content)).duration > 1
    redo = client.post(
        f"/jobs/{job['id']}/chunks/4/redo",
        data={"text": "By midnight the wind had turned.", "voice": "", "csrf": _csrf(page.text)},
        follow_redirects=False,
    )
    assert redo.status_code == 303
    burst.drain()
    again = client.get(f"/jobs/{job['id']}").text
    assert "Redo chunk 4" not in again and "Redo chunk 5" in again
    assert client.get(f"/jobs/{job['id']}/chunks/99/audio").status_code == 404
