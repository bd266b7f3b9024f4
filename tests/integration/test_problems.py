"""Every error the api answers is a problem (RFC 9457, application/problem+json) of a kind its
OpenAPI document names, and a dependency that is down is a 503 with Retry-After, never a 500."""

from __future__ import annotations

import dataclasses
import socket
import time
import uuid
from functools import partial

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from api.app import create_app
from api.deps import get_farm
from api.problems import OpenAIProblem, Problem
from shared.farm.tenants import create_key
from shared.infra import queues
from shared.infra.db import bookkeeping_scope, session_scope
from shared.infra.storage import S3Store
from tests.services import PG_ADMIN, failing_object_store

CLOSED = "127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture()
def auth(farm_settings):
    with session_scope() as session:
        _, key = create_key(session, "acme")
    return {"Authorization": f"Bearer {key}"}


def problem(response, status: int, kind: str) -> Problem:
    """The response's body as a problem of ``kind`` (about:blank: a bare HTTP status)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = Problem.model_validate(response.json())
    assert body.status == status
    assert body.type == (kind if kind == "about:blank" else f"/problems/{kind}")
    return body


def test_refusals_are_problems_of_their_kind(client, auth):
    missing = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
    assert problem(missing, 404, "job-not-found").title == "Job not found"
    unkeyed = client.get("/v1/jobs")
    assert problem(unkeyed, 401, "not-authenticated").detail.startswith("A valid API key")
    assert unkeyed.headers["www-authenticate"] == "Bearer"
    problem(client.get("/v1/nothing-here"), 404, "path-not-found")
    late = client.post("/v1/jobs", json={"text": "Hi."}, headers={**auth, "Idempotency-Key": "k"})
    other = client.post("/v1/jobs", json={"text": "Ho."}, headers={**auth, "Idempotency-Key": "k"})
    assert late.status_code == 202
    problem(other, 409, "idempotency-conflict")


def test_a_refused_request_names_each_field_and_why(client, auth):
    body = problem(client.get("/v1/jobs", params={"limit": 0}, headers=auth), 422, "invalid-input")
    assert [(e.loc, e.type) for e in body.errors or []] == [
        (["query", "limit"], "greater_than_equal")
    ]
    assert body.detail == "query.limit: Input should be greater than or equal to 1"
    sent = {"text": "Hi.", "voice": "bob", "priority": True}  # JSON's types: no true for 1
    body = problem(client.post("/v1/jobs", json=sent, headers=auth), 422, "invalid-input")
    assert sorted(e.loc[-1] for e in body.errors or []) == ["priority", "voice"]
    assert all(e.loc[0] == "body" for e in body.errors or [])


def test_a_method_the_path_does_not_answer_lists_every_one_it_does(client, auth):
    path = f"/v1/jobs/{uuid.uuid4()}"
    refused = client.put(path, headers=auth)
    problem(refused, 405, "method-not-allowed")
    assert refused.headers["allow"] == "GET, DELETE"
    assert client.patch("/v1/jobs", headers=auth).headers["allow"] == "GET, POST"
    static = client.post("/static/app.css")
    problem(static, 405, "method-not-allowed")
    assert static.headers["allow"] == "GET, HEAD"


def test_openais_routes_carry_openais_error_object(client, auth):
    refused = client.post("/v1/audio/speech", json={"model": "tts-1"}, headers=auth)
    body = OpenAIProblem.model_validate(refused.json())
    assert refused.status_code == 400 and body.type == "/problems/speech-refused"
    assert body.error.message == body.detail == "input: Field required; voice: Field required"
    assert body.error.type == "invalid_request_error"
    assert [e.loc for e in body.errors or []] == [["body", "input"], ["body", "voice"]]
    wrong = client.get("/v1/models/tts-2", headers=auth)
    assert OpenAIProblem.model_validate(wrong.json()).type == "/problems/model-not-found"


def test_a_deleted_job_answers_204_with_no_body(client, auth):
    job = client.post("/v1/jobs", json={"text": "Hello."}, headers=auth).json()
    gone = client.delete(f"/v1/jobs/{job['id']}", headers=auth)
    assert gone.status_code == 204 and gone.content == b""
    assert "content-type" not in gone.headers


def test_any_cursor_of_the_documented_shape_is_a_place_in_the_list(client, auth):
    job = client.post("/v1/jobs", json={"text": "Hello."}, headers=auth).json()
    for cursor, found in [(f"0-{'0' * 32}", []), (f"{'9' * 16}-{'f' * 32}", [job["id"]])]:
        page = client.get("/v1/jobs", params={"cursor": cursor}, headers=auth)
        assert [j["id"] for j in page.json()["items"]] == found, page.text
    problem(client.get("/v1/jobs", params={"cursor": "zzz"}, headers=auth), 422, "invalid-input")


def test_a_connection_postgres_ended_between_requests_is_replaced(client, auth, farm_settings):
    """A restart (or pg_terminate_backend) ends the pooled connections; the next request takes a
    new one instead of failing on a dead one (shared.infra.db: the server's goodbye is read)."""
    job = client.post("/v1/jobs", json={"text": "Hello."}, headers=auth).json()
    assert client.get(f"/v1/jobs/{job['id']}", headers=auth).status_code == 200
    assert _end_connections(farm_settings.database.url) > 0
    again = client.get(f"/v1/jobs/{job['id']}", headers=auth)
    assert again.status_code == 200, again.text


def _end_connections(url: str) -> int:
    """End every connection to the database at ``url`` (waiting until each has ended)."""
    admin = create_engine(PG_ADMIN, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) "
                "FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": url.rsplit("/", 1)[1]},
        ).scalar_one()
    admin.dispose()
    return ended


def _client_of(farm) -> TestClient:
    app = create_app()
    app.dependency_overrides[get_farm] = lambda: farm
    return TestClient(app)


def test_a_database_that_does_not_answer_is_a_503_with_retry_after(burst, auth):
    closed = burst.farm.settings.database.url.replace("127.0.0.1:5432", CLOSED)
    down = dataclasses.replace(
        burst.farm,
        sessions=partial(session_scope, closed),
        bookkeeping=partial(bookkeeping_scope, closed),
    )
    database = burst.farm.settings.database.model_copy(update={"url": closed})
    down.settings = burst.farm.settings.model_copy(update={"database": database})
    with _client_of(down) as client:
        refused = client.get("/v1/jobs", headers=auth)
        polled = client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)  # on the event loop
    for answer in (refused, polled):
        assert problem(answer, 503, "dependency-down").detail.startswith("the database did not")
        assert answer.headers["retry-after"] == "5"


@pytest.mark.parametrize("redis_is", ["refusing", "silent"])
def test_a_poll_with_redis_away_is_answered_and_not_counted(client, burst, auth, caplog, redis_is):
    """The rate protects the farm from a client, not from Redis's absence: as on every route.
    A Redis that takes the connection and never answers holds the poll a second at most."""
    job = client.post("/v1/jobs", json={"text": "Hello."}, headers=auth).json()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete in the backlog; nothing reads or answers them
        address = CLOSED if redis_is == "refusing" else f"127.0.0.1:{silent.getsockname()[1]}"
        redis = burst.farm.settings.redis.model_copy(update={"url": f"redis://{address}/0"})
        settings = burst.farm.settings.model_copy(update={"redis": redis})
        with _client_of(dataclasses.replace(burst.farm, settings=settings)) as other:
            started = time.monotonic()
            polled = other.get(f"/v1/jobs/{job['id']}", headers=auth)
            waited = time.monotonic() - started
    assert polled.status_code == 200 and polled.json()["id"] == job["id"]
    assert "not counted" in caplog.text and waited < 5  # a second, with room for a busy machine


@pytest.mark.parametrize("store_is", ["away", "failing"])
def test_an_object_store_that_does_not_answer_is_a_503_in_openais_shape(
    burst, auth, caplog, store_is
):
    """Away (refused), or answering 503 SlowDown as S3 does now and then: a 503, not a 500."""
    with failing_object_store(503, "SlowDown") as failing:
        endpoint = f"http://{CLOSED}" if store_is == "away" else failing
        settings = burst.farm.settings.storage.model_copy(update={"endpoint_url": endpoint})
        with _client_of(dataclasses.replace(burst.farm, store=S3Store(settings))) as client:
            refused = client.get("/v1/voices/tara/sample", headers=auth)
    assert problem(refused, 503, "dependency-down").detail.startswith("the object store")
    assert OpenAIProblem.model_validate(refused.json()).error.type == "server_error"
    assert refused.headers["retry-after"] == "5"
    assert "Traceback" not in caplog.text  # logged as an outage, not as a failure


def test_redis_that_does_not_answer_is_a_503_for_the_metrics(client, monkeypatch):
    closed = queues.redis_client(f"redis://{CLOSED}/0", timeout_s=1)
    monkeypatch.setattr("api.routes.health.queue_depths", lambda _farm: closed.llen("gpu"))
    refused = client.get("/metrics")
    assert problem(refused, 503, "dependency-down").detail.startswith("the redis did not")


def test_an_unexpected_failure_is_a_500_problem_without_its_traceback(burst, auth, monkeypatch):
    def fails(*_args):
        raise RuntimeError("a secret the answer must not show")

    monkeypatch.setattr("api.services.tenants.tenant_limits", fails)
    app = create_app()
    app.dependency_overrides[get_farm] = lambda: burst.farm
    with TestClient(app, raise_server_exceptions=False) as client:
        failed = client.get("/v1/limits", headers=auth)
    assert problem(failed, 500, "unexpected-failure").detail.startswith("The api failed")
    assert "secret" not in failed.text and "Traceback" not in failed.text
