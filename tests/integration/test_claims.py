"""The farm's per-chunk statements on the real Postgres find their chunk by its primary key
alone, and ask about its job once rather than per candidate row. A per-row subquery's cost is
what made the planner narrow the row down by status first, on the status index, when the
statistics made a status look rare (bench/scale.py's tables, never analysed: 2-4 ms a claim):
a scan of every chunk of that status, dead index entries too, growing with the backlog."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql

from shared.farm.stage_ends import (
    CHUNK_GENERATED_TO_DONE_AND_COUNTED,
    CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED,
)
from shared.farm.transitions import (
    CLAIM_GENERATED_CHUNK,
    CLAIM_PENDING_CHUNK,
    LEASE_COMPLETE_CHAPTER,
)
from shared.infra.db import session_scope
from shared.infra.models import Chapter, Chunk, Job, Tenant, utcnow

STATEMENTS = {
    "CLAIM_PENDING_CHUNK": CLAIM_PENDING_CHUNK,
    "CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED": CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED,
    "CLAIM_GENERATED_CHUNK": CLAIM_GENERATED_CHUNK,
    "CHUNK_GENERATED_TO_DONE_AND_COUNTED": CHUNK_GENERATED_TO_DONE_AND_COUNTED,
    "LEASE_COMPLETE_CHAPTER": LEASE_COMPLETE_CHAPTER,
}
DONE, PENDING, GENERATED = 2000, 6, 6


@pytest.fixture()
def farm_of_finished_chunks(farm_settings) -> uuid.UUID:
    """A running book whose chunks are nearly all done, the statistics fresh: a status other
    than done looks rare to the planner, as on a farm that has worked a while."""
    tenant, job = uuid.uuid4(), uuid.uuid4()
    statuses = ["done"] * DONE + ["pending"] * PENDING + ["generated"] * GENERATED
    with session_scope() as session:
        session.execute(insert(Tenant), {"id": tenant, "name": "acme", "webhook_secret": ""})
        session.execute(
            insert(Job),
            {
                "id": job,
                "tenant_id": tenant,
                "status": "running",
                "voice": "tara",
                "format": "mp3",
                "engine": "simulated",
                "chunks_total": len(statuses),
                "chunks_done": DONE,
                "created_at": utcnow(),
            },
        )
        session.execute(
            insert(Chapter),
            {"job_id": job, "index": 0, "title": "One", "status": "waiting"}
            | {"chunks_total": len(statuses), "chunks_done": DONE},
        )
        session.execute(
            insert(Chunk),
            [
                {"job_id": job, "index": i, "status": status, "text": "Words."}
                | {"voice": "tara", "boundary": "sentence", "chapter": 0}
                for i, status in enumerate(statuses)
            ],
        )
    with session_scope() as session:
        session.execute(text("ANALYZE chunk"))
        session.execute(text("ANALYZE job"))
    return job


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_a_chunks_statement_finds_it_by_its_primary_key(farm_of_finished_chunks, name):
    statement = STATEMENTS[name].compile(dialect=postgresql.psycopg.dialect())
    now = utcnow()
    params = {
        "job": farm_of_finished_chunks,
        "idx": DONE,  # the first pending chunk
        "lease": now,
        "at": now,
        "output": b"codes",
        "n_dropped": 0,
        "seconds": 1.0,
        "engine_share": 0.1,
        "take": 0,
        "takes": None,
        "suspect": None,
        "n": 24_000,
        "peak": 0.5,
        "energy": 0.1,
        "steps": b"",
        "cpu": 0.1,
        "bytes": 48_000,
    }
    constants = {  # the statement's own bound values (an enum's, as SQLAlchemy sends it)
        key: getattr(value, "value", value)
        for key, value in statement.params.items()
        if key not in params
    }
    with session_scope() as session:
        connection = session.connection()
        plan = connection.exec_driver_sql(f"EXPLAIN {statement}", constants | params).scalars()
        plan = "\n".join(plan)
        session.rollback()
    assert "chunk_pkey" in plan and "ix_chunk_status_lease" not in plan, plan
    filters = [line for line in plan.splitlines() if line.strip().startswith("Filter:")]
    assert not any("SubPlan" in line for line in filters), plan
