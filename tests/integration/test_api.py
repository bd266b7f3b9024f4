"""The REST API in process (TestClient) against real Postgres, Redis and S3; the queue is a
burst sender so that tests decide when work runs."""

from __future__ import annotations

import uuid

import pytest

from api.routes.health import redis_client
from shared.farm.tenants import create_key
from shared.infra.db import session_scope

BOOK = "# One\n\nHello there. This is a test of the farm.\n\n# Two\n\nThe end is near."


def key_for(tenant: str) -> dict[str, str]:
    with session_scope() as session:
        _, key = create_key(session, tenant)
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture()
def auth(farm_settings):
    return key_for("acme")


def test_every_route_needs_a_key(client):
    job_id = uuid.uuid4()
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", f"/v1/jobs/{job_id}"),
        ("GET", "/v1/voices"),
        ("GET", "/v1/limits"),
        ("GET", f"/v1/jobs/{job_id}/audio"),
        ("GET", f"/v1/jobs/{job_id}/events"),
        ("POST", f"/v1/jobs/{job_id}/cancel"),
        ("DELETE", f"/v1/jobs/{job_id}"),
        ("GET", "/v1/webhooks/secret"),
        ("POST", "/v1/webhooks/secret/rotate"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 401, path
        assert response.headers["www-authenticate"] == "Bearer"
    bad = client.get("/v1/jobs", headers={"Authorization": "Bearer lyre_nope"})
    assert bad.status_code == 401 and "not valid" in bad.json()["detail"]


def test_submit_poll_and_download(client, auth, burst):
    response = client.post(
        "/v1/jobs", json={"text": BOOK, "format": "wav", "title": "T"}, headers=auth
    )
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["progress"]["chunks_total"] == 4
    burst.drain()
    done = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert done["status"] == "succeeded" and done["progress"]["chunks_done"] == 4
    assert done["outputs"][0]["format"] == "wav"
    audio = client.get(f"/v1/jobs/{job['id']}/audio", headers=auth, follow_redirects=False)
    assert audio.status_code == 307 and "X-Amz-Signature" in audio.headers["location"]
    import httpx

    data = httpx.get(audio.headers["location"]).content
    assert data[:4] == b"RIFF" and len(data) > 10_000


def test_a_jobs_history_pages_through_its_events(client, auth, burst):
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    burst.drain()
    url = f"/v1/jobs/{job['id']}/events"
    whole = client.get(url, headers=auth).json()
    kinds = [event["kind"] for event in whole["items"]]
    assert whole["next_after"] is None and kinds[0] == "job.queued" and kinds[-1] == "job.succeeded"
    assert sorted(e["chunk"] for e in whole["items"] if e["kind"] == "chunk.done") == [0, 1, 2, 3]
    assert all(e["chunk"] is None for e in whole["items"] if e["kind"].startswith("job."))
    pages, after = [], None
    while True:
        params = {"limit": 3, **({"after": after} if after is not None else {})}
        page = client.get(url, params=params, headers=auth).json()
        pages.append(page["items"])
        after = page["next_after"]
        if after is None:
            break
    assert [e for items in pages for e in items] == whole["items"] and len(pages) > 2
    assert client.get(url, headers=key_for("other")).status_code == 404
    assert client.get(url, params={"limit": 0}, headers=auth).status_code == 422


def test_multipart_upload(client, auth):
    response = client.post(
        "/v1/jobs",
        headers=auth,
        files={"file": ("b.md", BOOK.encode())},
        data={"voice": "leo", "format": "opus", "metadata": '{"isbn": "1"}'},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["voice"], body["format"], body["metadata"]) == ("leo", "opus", {"isbn": "1"})


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"text": "   "}, 422, "text is empty"),
        ({"text": "..."}, 422, "nothing to say"),
        ({"text": "Hi.", "voice": "bob"}, 422, "'tara'"),
        ({"text": "Hi.", "format": "aiff"}, 422, "'mp3'"),
        ({"text": "Hi.", "webhook_url": "http://10.1.2.3/hook"}, 422, "private"),
        ({"text": "Hi.", "webhook_url": "ftp://example.com/"}, 422, "http or https"),
        ({"voice": "tara"}, 422, "text"),
        ({"text": "x" * (5 * 1024 * 1024 + 1)}, 413, "larger than"),
        ({"text": "Hi.", "seed": 5.5}, 422, "seed: Input should be a valid integer"),
        ({"text": "Hi.", "seed": True}, 422, "seed: Input should be a valid integer"),
        ({"text": "Hi.", "priority": "1"}, 422, "priority: Input should be a valid integer"),
        ({"text": "Hi.", "priority": 11.0}, 422, "priority: Input should be less than or equal"),
    ],
)
def test_bad_submissions_get_clear_errors(client, auth, body, status, needle):
    response = client.post("/v1/jobs", json=body, headers=auth)
    assert response.status_code == status
    assert needle in response.json()["detail"]


def test_an_integer_is_what_json_schema_says_it_is(client, auth):
    """JSON Schema's integer is a number with no fraction, however it is written: 999999.0."""
    body = {"text": "Hi.", "seed": 999999.0, "priority": -2.0, "mastering": {"bitrate_kbps": 96.0}}
    response = client.post("/v1/jobs", json=body, headers=auth)
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["seed"], job["priority"], job["mastering"]["bitrate_kbps"]) == (999999, -2, 96)


def test_not_json(client, auth):
    response = client.post(
        "/v1/jobs", content=b"{nope", headers={**auth, "content-type": "application/json"}
    )
    assert response.status_code == 422 and "not valid JSON" in response.json()["detail"]


def test_idempotency_key(client, auth):
    headers = {**auth, "Idempotency-Key": "abc"}
    first = client.post("/v1/jobs", json={"text": "Hello."}, headers=headers)
    again = client.post("/v1/jobs", json={"text": "Hello."}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = client.post("/v1/jobs", json={"text": "Goodbye."}, headers=headers)
    assert other.status_code == 409


def test_tenants_see_only_their_jobs(client, auth, burst):
    job = client.post("/v1/jobs", json={"text": "Mine."}, headers=auth).json()
    burst.drain()
    other = key_for("globex")
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("GET", f"/v1/jobs/{job['id']}/audio"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("GET", f"/v1/jobs/{job['id']}/webhooks"),
        ("DELETE", f"/v1/jobs/{job['id']}"),
    ]:
        assert client.request(method, path, headers=other).status_code == 404, path
    assert client.get("/v1/jobs", headers=other).json()["items"] == []
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).json()["status"] == "succeeded"


def test_list_filters_and_paginates(client, auth, burst):
    ids = [
        client.post("/v1/jobs", json={"text": f"Job {i}."}, headers=auth).json()["id"]
        for i in range(5)
    ]
    client.post(f"/v1/jobs/{ids[0]}/cancel", headers=auth)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params, headers=auth).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids[::-1]
    cancelled = client.get("/v1/jobs", params={"status": "cancelled"}, headers=auth).json()
    assert [item["id"] for item in cancelled["items"]] == [ids[0]]
    assert client.get("/v1/jobs", params={"status": "bogus"}, headers=auth).status_code == 422
    assert client.get("/v1/jobs", params={"cursor": "zzz"}, headers=auth).status_code == 422


def test_cancel_stops_the_chunks_and_delete_removes_objects(client, auth, burst):
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    burst.step()  # one chunk generated, the rest still queued
    cancelled = client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    burst.drain()
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).json()["progress"]["chunks_done"] == 0
    assert client.post(f"/v1/jobs/{job['id']}/cancel", headers=auth).status_code == 409
    audio = client.get(f"/v1/jobs/{job['id']}/audio", headers=auth)
    assert audio.status_code == 409
    assert client.delete(f"/v1/jobs/{job['id']}", headers=auth).status_code == 204
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).status_code == 404
    listing = burst.farm.store.client.list_objects_v2(
        Bucket=burst.farm.store.bucket, Prefix=f"jobs/{job['id']}/"
    )
    assert listing.get("KeyCount", 0) == 0


def test_voices_health_readiness_and_metrics(client, auth, burst):
    voices = client.get("/v1/voices", headers=auth).json()
    assert [v["id"] for v in voices][:2] == ["tara", "leah"]
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    client.post("/v1/jobs", json={"text": BOOK}, headers=auth)
    burst.drain()
    waiting = redis_client(burst.farm)  # Celery's lists: the queue and its priority lists
    prefix = burst.farm.settings.redis.key_prefix
    assert prefix  # this test run's own keys
    waiting.rpush(f"{prefix}gpu", "a", "b")
    waiting.rpush(f"{prefix}gpu\x06\x163", "c")
    waiting.rpush(f"other-{prefix}gpu", "another farm's")
    metrics = client.get("/metrics").text
    waiting.delete(f"other-{prefix}gpu")
    assert 'lyre_jobs{status="succeeded"} 1.0' in metrics
    assert 'lyre_queue_depth{queue="gpu"} 3.0' in metrics
    assert 'lyre_queue_depth{queue="cpu"} 0.0' in metrics
    assert 'lyre_chunk_stage_seconds{quantile="0.5",stage="decode"}' in metrics


def test_readiness_names_the_failing_part(client, burst, monkeypatch):
    monkeypatch.setattr(burst.farm.settings.redis, "url", "redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503 and list(response.json()["failing"]) == ["redis"]


def test_keys_create_prints_a_working_key(client, farm_settings, capsys):
    from cli.main import main

    assert main(["keys", "create", "--tenant", "initech"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("lyre_")
    assert client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with session_scope() as session:
        from sqlalchemy import select

        from shared.infra.models import ApiKey

        stored = session.scalars(select(ApiKey.key_hash)).all()
    assert key not in stored and all(len(h) == 64 for h in stored)  # only hashes are kept


def test_keys_create_without_a_database_is_one_line(capsys, monkeypatch):
    from cli.main import main
    from shared.infra import db
    from shared.infra.settings import get_settings

    monkeypatch.setenv("LYRE_DATABASE__URL", "postgresql+psycopg://postgres@127.0.0.1:1/none")
    get_settings.cache_clear()
    db.dispose_engines()
    try:
        assert main(["keys", "create", "--tenant", "x"]) == 1
    finally:
        get_settings.cache_clear()
        db.dispose_engines()
    err = capsys.readouterr().err
    assert "cannot reach the database" in err and "Traceback" not in err


def test_concurrent_submissions_with_one_idempotency_key_make_one_job(burst, farm_settings):
    from concurrent.futures import ThreadPoolExecutor

    from api.schemas import JobCreate
    from api.services.jobs import submit

    with session_scope() as session:
        tenant, _ = create_key(session, "racer")
    body = JobCreate(text="The same words, twice at once.")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: submit(burst.farm, tenant, body, "k1"), range(4)))
    assert len({job.id for job in results}) == 1


def test_keys_are_listed_revoked_rotated_and_expire(client, farm_settings, capsys):
    from datetime import timedelta

    from sqlalchemy import update

    from cli.main import main
    from shared.infra.models import ApiKey, utcnow

    def status(key: str) -> int:
        return client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code

    def made(*argv: str) -> str:
        assert main(list(argv)) == 0
        return capsys.readouterr().out.strip()

    first = made("keys", "create", "--tenant", "acme")
    second = made("keys", "rotate", first[:12], "--grace-hours", "1")
    assert status(first) == status(second) == 200  # the old one, for its grace period
    assert made("keys", "revoke", first[:12]).endswith("authenticates nothing from now on")
    assert status(first) == 401 and status(second) == 200
    third = made("keys", "rotate", second[:12])  # no grace: the old one stops at once
    assert status(second) == 401 and status(third) == 200
    brief = made("keys", "create", "--tenant", "acme", "--expires-in-days", "1")
    assert status(brief) == 200
    with session_scope() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.prefix == brief[:12])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert status(brief) == 401
    listing = made("keys", "list", "--tenant", "acme").splitlines()
    states = [line.split(maxsplit=4)[-1].split()[0] for line in listing[1:]]
    assert states == ["revoked", "revoked", "active", "expired"]
    assert main(["keys", "revoke", "lyre_nothing"]) == 2
    assert "no current key" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        main(["keys", "create", "--tenant", "acme", "--expires-in-days", "-1"])
    assert refused.value.code == 2
