"""A tenant's limits through the API and the CLI: characters per day, requests per second
(counted in Redis), weight and limits set with ``lyre tenants set``."""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.deps import get_farm
from cli.main import main as lyre
from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import Job, Tenant

PAGE = "A page of text, short enough for one chunk."


def key_for(tenant: str, **limits) -> dict[str, str]:
    with session_scope() as session:
        found, key = create_key(session, tenant)
        for field, value in limits.items():
            setattr(found, field, value)
    return {"Authorization": f"Bearer {key}"}


def jobs_of(tenant: str) -> int:
    with session_scope() as session:
        return session.scalar(
            select(func.count()).select_from(Job).join(Tenant).where(Tenant.name == tenant)
        )


def test_characters_past_the_days_limit_are_refused_with_retry_after(client, farm_settings):
    auth = key_for("acme", chars_per_day=len(PAGE) + 10)
    assert client.post("/v1/jobs", json={"text": PAGE}, headers=auth).status_code == 202
    refused = client.post("/v1/jobs", json={"text": PAGE}, headers=auth)
    assert refused.status_code == 429
    assert "characters a day" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 24 * 3600  # until midnight UTC
    assert jobs_of("acme") == 1  # nothing of the refused request stays
    limits = client.get("/v1/limits", headers=auth).json()
    assert limits["chars_today"] == len(PAGE) and limits["chars_per_day"] == len(PAGE) + 10
    assert (limits["retention_days"], limits["chunk_retention_days"]) == (30, 7)  # the farm's
    brief = client.get("/v1/limits", headers=key_for("brief", retention_days=3)).json()
    assert (brief["retention_days"], brief["chunk_retention_days"]) == (3, 3)  # never longer
    other = key_for("globex")  # the farm's limit, untouched by acme's
    assert client.post("/v1/jobs", json={"text": PAGE}, headers=other).status_code == 202


def test_requests_past_the_rate_get_429_and_other_tenants_do_not(client, burst):
    """Counted in Redis: two api processes (two apps here) share one count."""
    burst.farm.settings = burst.farm.settings.model_copy(
        update={"limits": burst.farm.settings.limits.model_copy(update={"request_burst": 3})}
    )
    hasty, calm = key_for("hasty", requests_per_s=0.5), key_for("calm")
    other_app = create_app()
    other_app.dependency_overrides[get_farm] = lambda: burst.farm
    with TestClient(other_app) as other:
        apis = [client, other, client, other]
        statuses = [api.get("/v1/jobs", headers=hasty).status_code for api in apis]
        # a job's poll (read on the event loop, through its own Redis client) counts alike
        polled = other.get(f"/v1/jobs/{uuid.uuid4()}", headers=hasty)
    assert statuses == [200, 200, 200, 429]  # a burst of three, then one every two seconds
    assert polled.status_code == 429
    refused = client.get("/v1/jobs", headers=hasty)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"
    assert client.get("/v1/jobs", headers=calm).status_code == 200


def test_lyre_tenants_sets_weights_and_limits(farm_settings, capsys):
    key_for("acme")
    assert lyre(["tenants", "set", "acme", "--weight", "2.5", "--running-jobs", "3"]) == 0
    assert lyre(["tenants", "set", "acme", "--chars-per-day", "0"]) == 0  # no limit
    assert lyre(["tenants", "set", "acme", "--retention-days", "7"]) == 0
    key_for("globex")
    capsys.readouterr()
    assert lyre(["tenants", "list"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["acme"] == ["acme", "2.5", "3", "none", "20*", "7"]  # * the farm's setting
    assert rows["globex"][-1] == "30*"  # files kept 30 days, the farm's retention
    assert lyre(["tenants", "set", "acme", "--running-jobs", "default"]) == 0
    with session_scope() as session:
        acme = session.scalar(select(Tenant).where(Tenant.name == "acme"))
        assert (acme.weight, acme.running_jobs, acme.chars_per_day) == (2.5, None, 0)
        assert acme.retention_days == 7


def test_lyre_tenants_refuses_bad_input_with_exit_2(farm_settings, capsys):
    key_for("acme")
    assert lyre(["tenants", "set", "nobody", "--weight", "2"]) == 2
    assert "no tenant is named 'nobody'" in capsys.readouterr().err
    assert lyre(["tenants", "set", "acme"]) == 2
    for bad in (
        ["--weight", "0"],
        ["--weight", "x"],
        ["--weight", "nan"],
        ["--running-jobs", "-1"],
        ["--requests-per-s", "nan"],
        ["--requests-per-s", "inf"],
        ["--retention-days", "-1"],
        ["--retention-days", "1.5"],
    ):
        try:
            code = lyre(["tenants", "set", "acme", *bad])
        except SystemExit as exc:  # argparse's own usage error
            code = exc.code
        assert code == 2, bad


def test_metrics_show_waiting_chunks_by_tenant_and_queue(client, burst, farm_settings):
    auth = key_for("acme")
    body = "\n\n".join(f"Sentence {i} is a chunk of its own here." for i in range(10))
    assert client.post("/v1/jobs", json={"text": body}, headers=auth).status_code == 202
    burst.dispatch(slots=2)  # a window of 3: on the queue, still waiting for a GPU
    burst.step()  # one generated: waiting for the cpu
    metrics = client.get("/metrics").text
    assert 'lyre_chunks_waiting{queue="gpu",tenant="acme"} 9.0' in metrics
    assert 'lyre_chunks_waiting{queue="cpu",tenant="acme"} 1.0' in metrics
    assert 'lyre_dispatch_window_chunks{tenant="acme"} 2.0' in metrics


def test_lyre_tenants_secret_prints_and_rotates_the_webhook_secret(farm_settings, capsys):
    assert lyre(["keys", "create", "--tenant", "newco"]) == 0
    first = capsys.readouterr()
    with session_scope() as session:
        stored = session.scalar(select(Tenant.webhook_secret).where(Tenant.name == "newco"))
    assert stored in first.err and stored not in first.out  # $(lyre keys create) is the key
    assert lyre(["keys", "create", "--tenant", "newco"]) == 0
    assert "whsec_" not in capsys.readouterr().err  # shown with the tenant's first key only
    assert lyre(["tenants", "secret", "newco"]) == 0
    assert capsys.readouterr().out.strip() == stored
    assert lyre(["tenants", "secret", "newco", "--rotate"]) == 0
    rotated = capsys.readouterr().out.strip()
    with session_scope() as session:
        now = session.scalar(select(Tenant.webhook_secret).where(Tenant.name == "newco"))
    assert rotated == now != stored and rotated.startswith("whsec_")
    assert lyre(["tenants", "secret", "nobody"]) == 2
    assert "no tenant named 'nobody'" in capsys.readouterr().err
