"""What a job's poll reads through without leaving the api's event loop: connections to the
database (psycopg's asyncio ones) and a Redis client (redis-py's asyncio one).

The rest of the api runs its statements in Starlette's thread pool, through SQLAlchemy. The poll
is the request clients repeat most, and a hop to a thread and back, with the event loop's thread
and the pool's threads taking turns at the GIL, cost about as much CPU as the poll's own work
(``bench/api.py``: the same read in a ``def`` route and an ``async def`` one).

Asyncio connections belong to the event loop that opened them, so :class:`Readers` is opened
and closed by the app's lifespan (``api.app``) on the loop that serves the requests; it opens
each database's connections and each Redis client on first use, from the farm's settings.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import psycopg
import redis.asyncio
from psycopg.pq import TransactionStatus
from sqlalchemy import make_url

from shared.infra.db import told_something
from shared.infra.settings import DatabaseSettings


class Connections:
    """At most ``size`` connections to one database, each lent to one poll at a time (more
    polls wait their turn: a connection opened for one poll would cost more than waiting).

    A connection is opened when none is idle, so a database that is away fails the poll at once
    (a 503, ``api.handlers``), and the next poll after it is back connects again; an idle one
    the server ended (a restart, ``pg_terminate_backend``) is closed unused; one a poll left in
    any state but idle (an error, a cancelled statement) is closed rather than lent again."""

    def __init__(self, url: str, size: int) -> None:
        # SQLAlchemy's URL of the database, as libpq's: postgresql://user@host:port/name?…
        self._conninfo = (
            make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        )
        self._turns = asyncio.Semaphore(size)
        self._idle: list[psycopg.AsyncConnection] = []

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self._turns:
            connection = await self._idle_one() or await psycopg.AsyncConnection.connect(
                self._conninfo, autocommit=True
            )
            try:
                yield connection
            finally:
                if connection.pgconn.transaction_status == TransactionStatus.IDLE:
                    self._idle.append(connection)
                else:
                    await connection.close()

    async def _idle_one(self) -> psycopg.AsyncConnection | None:
        while self._idle:
            connection = self._idle.pop()
            if not told_something(connection):
                return connection
            await connection.close()
        return None

    async def close(self) -> None:
        while self._idle:
            await self._idle.pop().close()


class Readers:
    """The event loop's connections and clients, by database and Redis URL."""

    def __init__(self) -> None:
        self._databases: dict[str, Connections] = {}
        self._redis: dict[str, redis.asyncio.Redis] = {}

    def database(self, settings: DatabaseSettings) -> Connections:
        if settings.url not in self._databases:
            self._databases[settings.url] = Connections(settings.url, settings.pool_size)
        return self._databases[settings.url]

    def redis(self, url: str) -> redis.asyncio.Redis:
        """A client for Lyre's own keys. Its callers bound each call with ``asyncio.timeout``:
        redis-py's own ``socket_timeout`` wraps every write in a task of its own
        (``asyncio.wait_for``, redis/asyncio/connection.py of redis 8.1.0), which cost a
        poll more CPU than the call itself; a call cut short closes its connection."""
        if url not in self._redis:
            self._redis[url] = redis.asyncio.Redis.from_url(url, socket_connect_timeout=1)
        return self._redis[url]

    async def close(self) -> None:
        for connections in self._databases.values():
            await connections.close()
        for client in self._redis.values():
            await client.aclose()
