"""A job's poll (``GET /v1/jobs/{id}``), read apart from the other routes (one statement for
the key and the job, no transaction): the same answer, the same keys, the same rate."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
from sqlalchemy import update

from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import ApiKey, utcnow

BOOK = "# One\n\nHello there. This is a test.\n\n# Two\n\nThe end is near. It is here."


def key_for(tenant: str, **limits) -> tuple[dict[str, str], str]:
    with session_scope() as session:
        found, key = create_key(session, tenant)
        for field, value in limits.items():
            setattr(found, field, value)
    return {"Authorization": f"Bearer {key}"}, key[:12]


def unsigned(job: dict) -> dict:
    """The job's JSON with whether each file has a URL: a presigned URL carries the second it
    was signed in."""
    return {
        **job,
        "outputs": [{**o, "url": bool(o["url"])} for o in job["outputs"]],
        "chapters": [{**c, "url": bool(c["url"])} for c in job["chapters"]],
    }


def test_a_poll_answers_as_the_list_does_while_the_job_runs(client, burst, farm_settings):
    auth, _ = key_for("acme")
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    done: list[list[int]] = []
    stages: list[str] = []
    while True:
        polled = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
        assert unsigned(polled) == unsigned(client.get("/v1/jobs", headers=auth).json()["items"][0])
        done.append([chapter["chunks_done"] for chapter in polled["chapters"]])
        if polled["progress"]["stage"] not in stages[-1:]:
            stages.append(polled["progress"]["stage"])
        if polled["status"] == "succeeded":
            break
        burst.step()
    totals = [chapter["chunks_total"] for chapter in polled["chapters"]]
    assert len(totals) == 2 and done[0] == [0, 0] and done[-1] == totals
    assert any(0 < sum(part) < sum(totals) for part in done)  # progress, chapter by chapter
    # the stage it is in, each in its turn
    assert stages == ["queued", "generating", "chapters", "book_files", "finished"]
    assert all(chapter["url"] for chapter in polled["chapters"]) and polled["outputs"]


def test_a_revoked_or_expired_key_stops_polling_at_once(client, farm_settings):
    auth, prefix = key_for("acme")
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    url = f"/v1/jobs/{job['id']}"
    assert client.get(url, headers=auth).status_code == 200
    with session_scope() as session:
        session.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(revoked_at=utcnow()))
    refused = client.get(url, headers=auth)
    assert refused.status_code == 401 and "not valid" in refused.json()["detail"]
    second, prefix = key_for("acme")
    assert client.get(url, headers=second).status_code == 200
    with session_scope() as session:
        session.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(expires_at=utcnow()))
    assert client.get(url, headers=second).status_code == 401
    assert client.get(url).status_code == 401  # no key at all


def test_polls_are_counted_against_the_tenants_rate(client, burst, farm_settings):
    burst.farm.settings = burst.farm.settings.model_copy(
        update={"limits": burst.farm.settings.limits.model_copy(update={"request_burst": 3})}
    )
    auth, _ = key_for("hasty", requests_per_s=0.5)
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    urls = [f"/v1/jobs/{job['id']}", f"/v1/jobs/{uuid.uuid4()}", f"/v1/jobs/{job['id']}"]
    statuses = [client.get(url, headers=auth).status_code for url in urls]
    assert statuses == [200, 404, 429]  # a burst of three (the submission one of them)
    refused = client.get(urls[0], headers=auth)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    other, _ = key_for("calm")
    assert client.get(urls[0], headers=other).status_code == 404  # its own rate, not hasty's


def test_polls_at_once_open_no_connection_past_the_pool(client, farm_settings, monkeypatch):
    """24 polls at once on the api's event loop (api/services/readers.py): they take turns at
    ``pool_size`` connections, opened once and reused, rather than one each."""
    auth, _ = key_for("acme", requests_per_s=1e6)
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    opened = []
    connect = psycopg.AsyncConnection.connect

    async def counted(*args, **kwargs):
        opened.append(1)
        return await connect(*args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", counted)
    with ThreadPoolExecutor(24) as pool:
        statuses = list(
            pool.map(
                lambda _: client.get(f"/v1/jobs/{job['id']}", headers=auth).status_code,
                range(96),
            )
        )
    assert statuses == [200] * 96
    assert 1 <= len(opened) <= farm_settings.database.pool_size
