"""What a job cost, in its JSON (per chapter and in all), and what its tenant used per day:
``GET /v1/usage``, ``lyre usage`` and the Prometheus counters, against jobs whose costs are
known (the files' bytes as the store gives them back, the characters sent)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy import select

from cli.main import main as lyre
from shared.audio import SAMPLE_RATE
from shared.infra.db import session_scope
from shared.infra.models import Chunk, Job
from shared.infra.storage import job_prefix
from tests.integration.test_limits import key_for

BOOK = "# One\n\nHello there. This is a test.\n\n# Two\n\nThe end is near. It is here."
REDONE = "By the evening the storm had passed."


def stored(job: dict, store) -> int:
    """Bytes of every object the bucket holds for the job (its chunks' audio, its files and
    its chapters' segments of the book's files), as S3 lists them; and the files it lists are
    among them, as their URLs give them."""
    listed: dict[str, int] = {}
    pages = store.client.get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=store.bucket, Prefix=job_prefix(job["id"])):
        listed.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    with session_scope() as session:
        samples = session.scalars(select(Chunk.samples).where(Chunk.job_id == job["id"])).all()
    assert sum(v for k, v in listed.items() if k.endswith(".f32")) == 4 * sum(samples)
    for output in job["outputs"]:
        size = len(httpx.get(output["url"]).content)
        assert size == listed[output["url"].split("?")[0].split(f"/{store.bucket}/")[-1]]
    return sum(listed.values())


def cpu(cost: dict) -> float:
    return sum(cost["cpu_s"].values())


def test_a_jobs_costs_add_up_to_its_tenants_usage_and_a_redo_adds_its_own(
    client, burst, farm_settings, capsys
):
    auth = key_for("costly")
    job = client.post("/v1/jobs", json={"text": BOOK}, headers=auth).json()
    assert client.get("/v1/usage", headers=auth).json()["total"]["characters"] > 0  # at once
    burst.drain()
    done = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    cost, chapters = done["cost"], [c["cost"] for c in done["chapters"]]
    assert cost["engine_s"] > 0 and all(c["engine_s"] > 0 for c in chapters)
    assert cost["cpu_s"]["decode"] > 0 and cost["cpu_s"]["encode"] > 0
    # the chunks' costs are the chapters'; the book's files add their stitch and bytes
    assert cost["engine_s"] == pytest.approx(sum(c["engine_s"] for c in chapters), abs=0.003)
    decode = sum(c["cpu_s"]["decode"] for c in chapters)
    assert cost["cpu_s"]["decode"] == pytest.approx(decode, abs=0.003)
    assert cost["cpu_s"]["encode"] > sum(c["cpu_s"]["encode"] for c in chapters)
    assert cost["stored_bytes"] == stored(done, burst.farm.store)
    with session_scope() as session:
        row = session.get(Job, job["id"])
        chars, audio_s = row.chars, row.audio_samples / SAMPLE_RATE
    usage = client.get("/v1/usage", headers=auth).json()
    assert usage["tenant"] == "costly" and len(usage["days"]) == 1
    assert usage["days"][0] | {"day": None} == usage["total"] | {"day": None}
    total = usage["total"]
    assert total["characters"] == chars and total["audio_s"] == pytest.approx(audio_s, abs=1e-3)
    assert total["engine_s"] == pytest.approx(cost["engine_s"], abs=1e-3)
    assert total["cpu_s"] == pytest.approx(cpu(cost), abs=3e-3)
    assert total["stored_bytes"] == cost["stored_bytes"]

    url = f"/v1/jobs/{job['id']}/chapters/2/regenerate"
    assert client.post(url, headers=auth, json={"text": REDONE}).status_code == 202
    burst.drain()
    again = client.get(f"/v1/jobs/{job['id']}", headers=auth).json()
    assert again["status"] == "succeeded" and again["outputs_version"] == 2
    more = client.get("/v1/usage", headers=auth).json()["total"]
    assert more["characters"] == chars + len("Two" + REDONE)  # the redo's chunks, its title one
    assert again["cost"]["engine_s"] > cost["engine_s"]  # work redone costs again
    assert more["engine_s"] == pytest.approx(again["cost"]["engine_s"], abs=1e-3)
    assert more["cpu_s"] == pytest.approx(cpu(again["cost"]), abs=3e-3)
    assert more["stored_bytes"] == again["cost"]["stored_bytes"] > total["stored_bytes"]

    metrics = client.get("/metrics").text
    found = re.search(r'lyre_tenant_engine_seconds_total\{tenant="costly"\} (\S+)', metrics)
    assert found and float(found[1]) == pytest.approx(more["engine_s"], abs=1e-3)
    assert f'lyre_tenant_characters_total{{tenant="costly"}} {float(more["characters"])}' in metrics

    assert lyre(["usage", "--tenant", "costly"]) == 0
    lines = capsys.readouterr().out.splitlines()
    day, last = lines[2].split(), lines[-1].split()
    assert day[2] == last[2] == str(more["characters"]) and last[1] == "total"
    assert float(last[6]) == pytest.approx(more["stored_bytes"] / 1e6, abs=0.1)


def test_usage_asks_are_checked(client, farm_settings, capsys):
    auth = key_for("asking")
    for query, reason in (
        ("?from=2026-12-07&to=2026-12-01", "after"),
        ("?from=2025-01-01&to=2026-12-01", "at most 366 days"),
        ("?from=yesterday", "a day is written YYYY-MM-DD"),
        ("?to=0", "a day is written YYYY-MM-DD"),  # not seconds since 1970
    ):
        refused = client.get(f"/v1/usage{query}", headers=auth)
        assert refused.status_code == 422 and reason in refused.text, query
    assert client.get("/v1/usage").status_code == 401
    empty = client.get("/v1/usage?from=2026-01-01&to=2026-01-31", headers=auth).json()
    assert empty["days"] == [] and empty["total"]["characters"] == 0
    assert (empty["from"], empty["to"]) == ("2026-01-01", "2026-01-31")
    assert lyre(["usage", "--tenant", "nobody"]) == 2
    assert "no tenant named 'nobody'" in capsys.readouterr().err
    assert lyre(["usage", "--from", "2026-12-07", "--to", "2026-12-01"]) == 2
    assert "is after" in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:
        lyre(["usage", "--from", "2026-13-01"])
    assert refused.value.code == 2 and "not a day" in capsys.readouterr().err
