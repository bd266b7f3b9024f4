"""Reproducible jobs through the API and the farm's stages (real Postgres and S3, espeak-ng):
the same text, voice, settings and seed give the same bytes in every file, though the two
jobs' chunks were made interleaved with each other's and with other jobs'."""

from __future__ import annotations

import pytest

from shared.farm.seeds import SEED_LIMIT
from shared.farm.tenants import create_key
from shared.infra.models import Job

BOOK = (
    "# One\n\nShe sells sea shells by the shore. How happy he is!\n\n"
    "# Two\n\nHush, the fish whisper. The end is near, and then it ends."
)


@pytest.fixture()
def auth(burst):
    with burst.farm.sessions() as session:
        _, key = create_key(session, "acme")
    return {"Authorization": f"Bearer {key}"}


def submit(client, auth, **fields) -> dict:
    response = client.post(
        "/v1/jobs", json={"text": BOOK, "title": "Shells", **fields}, headers=auth
    )
    assert response.status_code == 202, response.text
    return response.json()


def files_of(burst, job_id: str) -> dict[tuple, bytes]:
    """Every file of the job's current version, by kind, format and chapter."""
    with burst.farm.sessions() as session:
        job = session.get(Job, job_id)
        outputs = list(job.outputs)
    return {
        (o["kind"], o["format"], o.get("chapter")): burst.farm.store.get_bytes(o["key"])
        for o in outputs
    }


def test_the_same_seed_gives_the_same_bytes_in_every_file(client, auth, burst):
    first = submit(client, auth, seed=42, format="mp3")
    others = [submit(client, auth, seed=43, format="mp3"), submit(client, auth, format="mp3")]
    multipart = client.post(
        "/v1/jobs",
        files={"file": ("book.md", BOOK.encode())},
        data={"title": "Shells", "seed": "42"},
        headers=auth,
    )
    assert multipart.status_code == 202, multipart.text
    second = multipart.json()
    burst.drain()  # the four jobs' chunks, generated and decoded in turn
    ids = [first["id"], second["id"], *(job["id"] for job in others)]
    shown = [client.get(f"/v1/jobs/{i}", headers=auth).json() for i in ids]
    assert [job["status"] for job in shown] == ["succeeded"] * 4
    assert [job["seed"] for job in shown] == [42, 42, 43, None]
    a, b, other_seed, unseeded = (files_of(burst, i) for i in ids)
    # the MP3 programme, the M4B, each chapter's MP3, the captions and the chapter list
    assert {kind for kind, _, _ in a} == {"programme", "m4b", "chapter", "captions", "chapters"}
    assert a == b
    assert other_seed[("programme", "mp3", None)] != a[("programme", "mp3", None)]
    assert other_seed[("m4b", "m4b", None)] != a[("m4b", "m4b", None)]
    assert unseeded.keys() == a.keys()  # no seed still makes every file


def test_a_seeded_jobs_chapter_redone_the_same_way_gives_the_same_bytes(client, auth, burst):
    jobs = [submit(client, auth, seed=7, format="m4b") for _ in range(2)]
    burst.drain()
    before = files_of(burst, jobs[0]["id"])
    for job in jobs:
        url = f"/v1/jobs/{job['id']}/chapters/2/regenerate"
        assert client.post(url, headers=auth, json={}).status_code == 202
    burst.drain()
    a, b = (files_of(burst, job["id"]) for job in jobs)
    assert a == b  # the redone chapter's chunks: seeds from 7 and their new numbers
    assert a[("programme", "m4b", None)] != before[("programme", "m4b", None)]  # said afresh


@pytest.mark.parametrize(
    ("seed", "reason"),
    [
        (-1, "seed: Input should be greater than or equal to 0"),
        (SEED_LIMIT, f"seed: Input should be less than {SEED_LIMIT}"),
        ("soon", "seed: Input should be a valid integer"),
        (1.5, "seed: Input should be a valid integer"),
    ],
)
def test_a_seed_out_of_range_is_refused_with_its_reason(client, auth, seed, reason):
    response = client.post("/v1/jobs", json={"text": BOOK, "seed": seed}, headers=auth)
    assert response.status_code == 422
    assert reason in response.json()["detail"]
    form = client.post(
        "/v1/jobs",
        files={"file": ("book.md", BOOK.encode())},
        data={"seed": str(seed)},
        headers=auth,
    )
    assert form.status_code == 422 and "seed: Input should be" in form.json()["detail"]
    assert client.get("/v1/jobs", headers=auth).json()["items"] == []
