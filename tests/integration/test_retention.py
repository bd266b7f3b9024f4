"""A job's objects in the bucket (moto's S3 server) over its life: kept for its tenant's
retention period and then removed, chunk audio first (the clock moved, not slept); every one of
them removed by DELETE, including what a stage writes after the delete."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlalchemy import select

from shared.farm.retention import expire, periods
from shared.farm.tenants import set_tenant
from shared.infra.db import session_scope
from shared.infra.models import Chunk, DeletedJob, utcnow
from shared.infra.settings import RetentionSettings
from shared.infra.storage import job_prefix
from tests.books import make_epub, three_chapter_book
from tests.e2e.test_audiobook import jpeg
from tests.integration.test_api import key_for
from tests.integration.test_web import sign_in

BOOK = "# One\n\nHello there. This is a test of the farm.\n\n# Two\n\nThe end is near."
DAY = timedelta(days=1)


def bucket(burst) -> set[str]:
    """Every object in the bucket, listed."""
    store = burst.farm.store
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def of(job_id: str, keys: set[str]) -> set[str]:
    return {key for key in keys if key.startswith(job_prefix(job_id))}


def finished(client, burst, auth, **body) -> dict:
    response = client.post("/v1/jobs", headers=auth, json={"text": BOOK, **body})
    assert response.status_code == 202, response.text
    burst.drain()
    job = client.get(f"/v1/jobs/{response.json()['id']}", headers=auth).json()
    assert job["status"] == "succeeded", job["error"]
    return job


def test_retention_periods_of_a_tenant():
    farm = RetentionSettings(days=30, chunk_days=7)
    assert periods(None, farm) == (7, 30)  # the farm's
    assert periods(2, farm) == (2, 2)  # chunk audio never outlives the files
    assert periods(0, farm) == (7, 0)  # files kept for ever; chunk audio still goes
    assert periods(None, RetentionSettings(days=30, chunk_days=0)) == (30, 30)
    assert periods(0, RetentionSettings(days=30, chunk_days=0)) == (0, 0)


def test_files_expire_after_the_tenants_retention_period(client, burst):
    acme, globex = key_for("acme"), key_for("globex")
    with session_scope() as session:  # `lyre tenants set globex --retention-days 2`
        set_tenant(session, "globex", {"retention_days": 2})
    kept = finished(client, burst, acme)  # the farm's: chunk audio 7 days, files 30
    short = finished(client, burst, globex)
    before = bucket(burst)
    assert {k.split("/")[2] for k in of(kept["id"], before)} == {"chunks", "v1"}
    at = utcnow()
    assert expire(burst.farm, at + DAY) == {"chunks": 0, "files": 0, "deleted": 0}
    assert expire(burst.farm, at + 3 * DAY) == {"chunks": 1, "files": 1, "deleted": 0}
    assert of(short["id"], bucket(burst)) == set() and of(kept["id"], bucket(burst))

    assert expire(burst.farm, at + 8 * DAY)["chunks"] == 1  # acme's chunk audio, not its files
    left = of(kept["id"], bucket(burst))
    assert left and all("/chunks/" not in key for key in left)
    job = client.get(f"/v1/jobs/{kept['id']}", headers=acme).json()
    assert job["chunks_expired_at"] and not job["expired_at"]
    assert all(o["url"] for o in job["outputs"])  # still there to download
    redo = client.post(
        f"/v1/jobs/{kept['id']}/chapters/1/regenerate", headers=acme, json={"voice": "leo"}
    )
    assert redo.status_code == 410 and "redone" in redo.json()["detail"]

    assert expire(burst.farm, at + 31 * DAY) == {"chunks": 0, "files": 1, "deleted": 0}
    assert of(kept["id"], bucket(burst)) == set()
    job = client.get(f"/v1/jobs/{kept['id']}", headers=acme).json()
    assert job["expired_at"] and job["outputs"] == [] and job["status"] == "succeeded"
    assert all(c["url"] is None for c in job["chapters"])
    audio = client.get(f"/v1/jobs/{kept['id']}/audio", headers=acme, follow_redirects=False)
    assert audio.status_code == 410 and "removed on" in audio.json()["detail"]
    assert expire(burst.farm, at + 60 * DAY) == {"chunks": 0, "files": 0, "deleted": 0}


def test_expiry_goes_in_batches_and_skips_what_has_not_ended(client, burst):
    acme = key_for("acme")
    done = [finished(client, burst, acme)["id"] for _ in range(3)]
    running = client.post("/v1/jobs", headers=acme, json={"text": BOOK}).json()["id"]
    burst.farm.settings.retention.batch = 2
    later = utcnow() + 40 * DAY
    assert expire(burst.farm, later)["files"] == 2
    assert expire(burst.farm, later)["files"] == 1
    assert expire(burst.farm, later)["files"] == 0
    keys = bucket(burst)
    assert not any(of(job_id, keys) for job_id in done)
    with session_scope() as session:  # queued, never finished: nothing of it expires
        assert session.scalars(select(Chunk.status).where(Chunk.job_id == running)).all()


def test_the_web_page_says_the_files_are_gone(client, burst):
    acme = key_for("acme")
    job = finished(client, burst, acme)
    expire(burst.farm, utcnow() + 40 * DAY)
    sign_in(client, acme["Authorization"].removeprefix("Bearer "))
    html = client.get(f"/jobs/{job['id']}").text
    assert "Its files were removed on" in html and "Redo a chapter" not in html
    assert "X-Amz-Signature" not in html


def test_delete_removes_every_object_of_the_job_and_no_other(client, burst, tmp_path):
    """A book with a cover, its chapters, captions and M4B, a chapter redone (a second
    version), and another job beside it: DELETE leaves none of the first job's objects and
    every one of the other's."""
    acme = key_for("acme")
    epub = make_epub(tmp_path / "b.epub", three_chapter_book(), cover=jpeg())
    response = client.post(
        "/v1/jobs",
        headers=acme,
        files={"file": ("b.epub", epub.read_bytes())},
        data={"preset": "acx"},
    )
    assert response.status_code == 202, response.text
    book = response.json()["id"]
    burst.drain()
    redo = client.post(
        f"/v1/jobs/{book}/chapters/2/regenerate", headers=acme, json={"text": "Calm again."}
    )
    assert redo.status_code == 202, redo.text
    burst.drain()
    assert client.get(f"/v1/jobs/{book}", headers=acme).json()["outputs_version"] == 2
    other = finished(client, burst, acme)
    before = bucket(burst)
    mine = of(book, before)
    names = {key.split("/", 2)[2] for key in mine}
    assert {"cover.jpg", "v2/book.m4b", "v2/captions.vtt", "v2/captions.srt"} <= names
    assert {"v1/chapter-001.mp3", "v2/chapter-002.mp3"} <= names  # chapters of both versions
    assert any(name.startswith("chunks/") for name in names)
    assert client.delete(f"/v1/jobs/{book}", headers=acme).status_code == 204
    after = bucket(burst)
    assert of(book, after) == set()
    assert after == before - mine and of(other["id"], after) == of(other["id"], before)
    assert client.get(f"/v1/jobs/{book}", headers=acme).status_code == 404


class HeldStore:
    """The bucket, with a chunk's PCM held on its way until ``go`` is set: a decode that
    claimed its chunk before the job was deleted, and writes after."""

    def __init__(self, store) -> None:
        self.store, self.go, self.waiting = store, threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.store, name)

    def put_bytes(self, key, data) -> None:
        self.waiting.set()
        self.go.wait(30)
        self.store.put_bytes(key, data)


def test_an_object_written_after_the_delete_is_swept(client, burst):
    from shared.farm import stages

    acme = key_for("acme")
    job_id = client.post("/v1/jobs", headers=acme, json={"text": "Said late."}).json()["id"]
    burst.drain(("generate",))
    ((_, job, index, _),) = [m for m in burst.sender.messages if m[0] == "decode"]
    store = burst.farm.store = HeldStore(burst.farm.store)
    decode = threading.Thread(target=stages.decode_chunk, args=(burst.farm, None, job, index))
    decode.start()
    assert store.waiting.wait(30)
    assert client.delete(f"/v1/jobs/{job_id}", headers=acme).status_code == 204
    store.go.set()
    decode.join(30)
    assert len(of(job_id, bucket(burst))) == 1  # the chunk, written after the delete
    now = utcnow()
    assert expire(burst.farm, now)["deleted"] == 1
    assert of(job_id, bucket(burst)) == set()
    with session_scope() as session:  # swept again until a lease has passed and none is left
        assert session.get(DeletedJob, job)
    lease = timedelta(seconds=burst.farm.settings.farm.lease_s + 1)
    assert expire(burst.farm, now + lease)["deleted"] == 1
    with session_scope() as session:
        assert session.get(DeletedJob, job) is None


def test_beat_runs_the_expiry():
    from shared.infra import queues
    from workers.app import create_app

    schedule = create_app().conf.beat_schedule["expire"]
    assert schedule == {"task": queues.EXPIRE, "schedule": RetentionSettings().every_s}
