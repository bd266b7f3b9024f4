"""A job's poll (``GET /v1/jobs/{id}``): the request clients repeat most, every few seconds for
each job they wait on, so it is read as cheaply as the API can read it.

Two statements on one pooled connection, each committed on its own (a bookkeeping connection:
no BEGIN, no COMMIT; at READ COMMITTED a transaction's statements would each see what was
committed before they began all the same): the key, its tenant and the job in one, the
chapters' progress in the other; the request is counted against the tenant's rate in Redis
between them. Both statements are built once and read columns, not ORM objects: building a
statement, and loading ORM objects, cost more CPU than the round trips.

The key is looked up at every poll, not cached: a key revoked or expired stops polling at
once, as it stops every other route.
"""

from __future__ import annotations

import threading
import uuid
from functools import cache
from typing import Any

from sqlalchemy import RowMapping, bindparam, inspect, select

from api.deps import count_request
from api.errors import JobNotFound, NotAuthenticated
from api.schemas import JobOut
from shared.farm.context import Farm
from shared.farm.jobs import job_json
from shared.farm.outputs import chapter_progress
from shared.farm.tenants import hash_key, valid_key
from shared.infra.models import ApiKey, Job, Tenant, utcnow

# What counting a request reads of the tenant (``limits_for``, and its name for the log),
# selected as "tenant__<name>"; and the job's columns, under their attributes' names.
TENANT_FIELDS = ("id", "name", "requests_per_s", "running_jobs", "chars_per_day")
JOB_FIELDS = tuple(attribute.key for attribute in inspect(Job).column_attrs)

_tenant, _key, _job = Tenant.__table__.c, ApiKey.__table__.c, Job.__table__.c
JOB_OF_KEY = (
    select(
        *(_tenant[name].label(f"tenant__{name}") for name in TENANT_FIELDS),
        *(attribute.columns[0].label(attribute.key) for attribute in inspect(Job).column_attrs),
    )
    .select_from(Tenant.__table__)
    .join(ApiKey.__table__, _key.tenant_id == _tenant.id)
    .outerjoin(Job.__table__, (_job.id == bindparam("job")) & (_job.tenant_id == _tenant.id))
    .where(_key.key_hash == bindparam("key_hash"), valid_key(bindparam("now")))
)


@cache
def _readers(pool_size: int) -> threading.BoundedSemaphore:
    """Polls reading at once: no more than the pool keeps connections. Past that, the pool opens
    a connection for one poll and closes it after (Postgres starts a process for each), and
    under a load of polls that cost more than the polls themselves; waiting for a pooled
    connection costs nothing, as one process runs one poll's Python at a time anyway."""
    return threading.BoundedSemaphore(pool_size)


def read_job(farm: Farm, key: str, job_id: uuid.UUID) -> JobOut:
    """The job as its tenant sees it; 401 for a key that is not valid, 404 for a job that is
    not the key's tenant's (after the request is counted, as on every other route)."""
    found_by = {"job": job_id, "key_hash": hash_key(key), "now": utcnow()}
    with _readers(farm.settings.database.pool_size), farm.bookkeeping() as connection:
        found = connection.execute(JOB_OF_KEY, found_by).mappings().first()
        if found is None:
            raise NotAuthenticated("the API key is not valid")
        tenant = Tenant(**_fields(found, TENANT_FIELDS, "tenant__"))  # what counting reads
        count_request(farm, tenant)
        if found["id"] is None:
            raise JobNotFound()
        chapters = chapter_progress(farm, connection, [job_id])[job_id]
    job = Job(**_fields(found, JOB_FIELDS))  # not in a session: read, never written
    return JobOut.model_validate(job_json(farm, job, chapters))


def _fields(found: RowMapping, names: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    return {name: found[prefix + name] for name in names}
