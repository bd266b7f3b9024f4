"""The endpoint ``bench/api.py`` measures the API's job poll against: FastAPI and psycopg 3, one
pool of connections, one SELECT of the job's row by id, the row as JSON; no key, no rate, no
ORM. ``uvicorn --app-dir bench poll_baseline:app`` with ``BASELINE_DSN`` set to a libpq
connection string.

Two forms of the same read: ``/sync/jobs/{id}`` is a plain ``def`` route, run in Starlette's
thread pool as most of Lyre's routes are, over a queue of connections; ``/async/jobs/{id}`` is
an ``async def`` route over asyncio connections, on the event loop, as Lyre's job poll is.
"""

from __future__ import annotations

import asyncio
import os
import queue
import uuid
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException
from psycopg.rows import dict_row

POOL_SIZE = 5  # Lyre's default (LYRE_DATABASE__POOL_SIZE)
QUERY = "SELECT * FROM job WHERE id = %s"


def _dsn() -> str:
    return os.environ["BASELINE_DSN"]


pools: dict[str, Any] = {}  # "sync": a queue of connections, "async": an asyncio one


@asynccontextmanager
async def lifespan(_: FastAPI):
    """Each pool's connections, opened before the first request."""
    pools["sync"] = queue.Queue()
    pools["async"] = asyncio.Queue()
    for _ in range(POOL_SIZE):
        pools["sync"].put(psycopg.connect(_dsn(), autocommit=True, row_factory=dict_row))
        pools["async"].put_nowait(
            await psycopg.AsyncConnection.connect(_dsn(), autocommit=True, row_factory=dict_row)
        )
    yield
    for _ in range(POOL_SIZE):
        pools["sync"].get().close()
        await pools["async"].get_nowait().close()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/sync/jobs/{job_id}")
def sync_job(job_id: uuid.UUID) -> dict[str, Any]:
    pool: queue.Queue[psycopg.Connection[dict[str, Any]]] = pools["sync"]
    connection = pool.get()  # waits while every connection is in use
    try:
        row = connection.execute(QUERY, (job_id,)).fetchone()
    finally:
        pool.put(connection)
    if row is None:
        raise HTTPException(404, "no such job")
    return row


@app.get("/async/jobs/{job_id}")
async def async_job(job_id: uuid.UUID) -> dict[str, Any]:
    pool: asyncio.Queue[psycopg.AsyncConnection[dict[str, Any]]] = pools["async"]
    connection = await pool.get()
    try:
        row = await (await connection.execute(QUERY, (job_id,))).fetchone()
    finally:
        pool.put_nowait(connection)
    if row is None:
        raise HTTPException(404, "no such job")
    return row
