"""A job's poll (``GET /v1/jobs/{id}``): the request clients repeat most, every few seconds for
each job they wait on, so it is read as cheaply as the API can read it.

On the event loop (``api.services.readers`` says why): one statement, on a
connection in autocommit (no BEGIN, no COMMIT), reads the key, its tenant, the job and its
chapters' progress (as a JSON array); then the request is counted against the tenant's rate in
Redis. The statement is built by SQLAlchemy once, compiled to SQL once, and run on the driver
(psycopg): building a statement, loading ORM objects, and then SQLAlchemy's own work at each
execution (its compiled-statement cache, result metadata) each cost more CPU than the round
trips. The answer is encoded by pydantic at once (the route returns the bytes; FastAPI would
validate the model a second time before encoding it); a job with files is answered from a
worker thread, since presigning their URLs may fetch credentials over HTTP.

The key is looked up at every poll, not cached: a key revoked or expired stops polling at
once, as it stops every other route.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import Enum
from typing import Any, cast

import psycopg
from psycopg.rows import dict_row
from sqlalchemy import DateTime, Select, bindparam, func, inspect, select
from sqlalchemy.dialects import postgresql
from starlette.concurrency import run_in_threadpool

from api.errors import JobNotFound, NotAuthenticated
from api.schemas import JobOut
from api.services.rates import count_request_on_loop
from api.services.readers import Readers
from shared.farm.context import FarmContext
from shared.farm.jobs import job_json
from shared.farm.outputs import ONE_JOB_CHAPTERS, chapter_entry
from shared.farm.tenants import hash_key, valid_key
from shared.infra.models import ApiKey, Job, Tenant, utcnow

# What counting a request reads of the tenant (``limits_for``, and its name for the log),
# selected as "tenant__<name>"; and the job's columns, under their attributes' names.
TENANT_FIELDS = ("id", "name", "requests_per_s", "running_jobs", "chars_per_day")
JOB_FIELDS = tuple(attribute.key for attribute in inspect(Job).column_attrs)

# The job's chapters with their progress, in order, as one JSON array: a column of the poll's
# one statement rather than a statement (and a round trip) of their own.
_chapters = ONE_JOB_CHAPTERS.subquery()
CHAPTERS = (
    select(
        func.json_agg(postgresql.aggregate_order_by(_chapters.table_valued(), _chapters.c.index))
    )
    .scalar_subquery()
    .label("chapters_of_job")
)

_tenant, _key, _job = Tenant.__table__.c, ApiKey.__table__.c, Job.__table__.c
JOB_OF_KEY = (
    select(
        *(_tenant[name].label(f"tenant__{name}") for name in TENANT_FIELDS),
        *(attribute.columns[0].label(attribute.key) for attribute in inspect(Job).column_attrs),
        CHAPTERS,
    )
    .select_from(Tenant.__table__)
    .join(ApiKey.__table__, _key.tenant_id == _tenant.id)
    .outerjoin(Job.__table__, (_job.id == bindparam("job")) & (_job.tenant_id == _tenant.id))
    .where(
        _key.key_hash == bindparam("key_hash"),
        valid_key(bindparam("now", type_=DateTime(timezone=True))),
    )
)


@dataclass(frozen=True)
class DriverStatement:
    """A statement as psycopg takes it: its SQL (named parameters, ``%(job)s``) and the values
    of the parameters the statement holds itself (its constants)."""

    sql: str
    constants: dict[str, Any]

    @classmethod
    def of(cls, statement: Select) -> DriverStatement:
        compiled = statement.compile(dialect=postgresql.psycopg.dialect())
        constants = {  # an enum's value, as SQLAlchemy would send it
            name: value.value if isinstance(value, Enum) else value
            for name, value in compiled.params.items()
            if value is not None
        }
        return cls(str(compiled), constants)


JOB_OF_KEY_SQL = DriverStatement.of(JOB_OF_KEY)


async def read_job(farm: FarmContext, readers: Readers, key: str, job_id: uuid.UUID) -> bytes:
    """The job's JSON as its tenant sees it; 401 for a key that is not valid, 404 for a job
    that is not the key's tenant's (after the request is counted, as on every other route)."""
    found_by = {"job": job_id, "key_hash": hash_key(key), "now": utcnow()}
    async with readers.database(farm.settings.database).connection() as connection:
        found = await _first(connection, JOB_OF_KEY_SQL, found_by)
    if found is None:
        raise NotAuthenticated("the API key is not valid")
    tenant = cast(Tenant, Columns(_fields(found, TENANT_FIELDS, "tenant__")))
    await count_request_on_loop(farm, readers.redis(farm.settings.redis.url), tenant)
    if found["id"] is None:
        raise JobNotFound()
    chapters = found["chapters_of_job"] or []
    if found["outputs"] or any(chapter["output_key"] for chapter in chapters):
        # download URLs to presign, and presigning may fetch the store's credentials (an
        # instance role's, over HTTP, when they are due to expire): not on the event loop
        return await run_in_threadpool(_answer, farm, found, chapters)
    return _answer(farm, found, chapters)


def _answer(farm: FarmContext, found: dict[str, Any], chapters: list[dict[str, Any]]) -> bytes:
    job = cast(Job, Columns(_fields(found, JOB_FIELDS)))
    shown = [chapter_entry(farm, chapter) for chapter in chapters]
    return JobOut.model_validate(job_json(farm, job, shown)).model_dump_json().encode()


class Columns(dict[str, Any]):
    """A row's columns read as attributes: what counting a request reads of a tenant and what
    ``job_json`` reads of a job, without building an ORM object (whose instrumented
    constructor cost a tenth of a poll's CPU) for values that are read, never written."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


async def _first(
    connection: psycopg.AsyncConnection, statement: DriverStatement, params: dict[str, Any]
) -> dict[str, Any] | None:
    async with connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(statement.sql, {**statement.constants, **params})
        return await cursor.fetchone()


def _fields(found: dict[str, Any], names: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    return {name: found[prefix + name] for name in names}
