"""Errors that say a dependency is away — Postgres, Redis, the object store — rather than that
the work is wrong. The api answers them with 503 and Retry-After; tasks wait them out without
counting them against the job; the webhook worker records an outcome once the database is back."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
from botocore import exceptions as boto
from kombu import exceptions as kombu
from redis import exceptions as redis
from sqlalchemy import exc as sql


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it was raised from or during, innermost last."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def dependency_down(error: BaseException) -> str | None:
    """The dependency ``error`` says is away ("database", "redis", "object store"), or None."""
    for cause in _causes(error):
        if isinstance(cause, sql.OperationalError | sql.InterfaceError | sql.DisconnectionError):
            return "database"
        if isinstance(cause, sql.TimeoutError):  # every pooled connection busy past the wait
            return "database"
        if isinstance(cause, sql.DBAPIError) and cause.connection_invalidated:
            return "database"
        if isinstance(cause, psycopg.OperationalError):  # run on the driver itself (polls)
            return "database"
        if isinstance(cause, redis.ConnectionError | redis.TimeoutError | kombu.OperationalError):
            return "redis"
        if isinstance(cause, boto.ConnectionError | boto.HTTPClientError):
            return "object store"  # refused, timed out, or the connection cut mid-answer
        if isinstance(cause, boto.ClientError) and _status(cause) >= 500:
            return "object store"  # its own failure (500 InternalError, 503 SlowDown)
    return None


def _status(error: boto.ClientError) -> int:
    """The HTTP status of the object store's answer (0 where botocore did not record one)."""
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
