"""Database access: engines and sessions, built from settings on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_settings

# A pooled connection is pinged before use only after idling this long: a busy worker reuses
# its connection every few milliseconds, and a ping per checkout would be one more round trip
# per transaction, while one that sat idle may have been cut by a restart or a proxy.
PING_AFTER_IDLE_S = 10.0

# (url, waits for the disk) -> (transactions, statements that each commit on their own)
_sessions: dict[tuple[str, bool], tuple[sessionmaker[Session], sessionmaker[Session]]] = {}


def _factories(
    url: str | None, wait_for_disk: bool
) -> tuple[sessionmaker[Session], sessionmaker[Session]]:
    settings = get_settings().database
    url = url or settings.url
    postgres = url.startswith("postgresql")
    key = (url, wait_for_disk or not postgres)  # SQLite (embedded mode): one engine
    if key not in _sessions:
        options: dict[str, Any] = {"pool_size": settings.pool_size} if postgres else {}
        if not key[1]:  # a startup parameter: a pooler in front of Postgres must pass it on
            options["connect_args"] = {"options": "-c synchronous_commit=off"}
        engine = create_engine(url, **options)
        _ping_idle_connections(engine)
        if not postgres:
            event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite runs in this process: a transaction costs no round trips, and stays atomic
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT") if postgres else engine
        _sessions[key] = (
            sessionmaker(engine, expire_on_commit=False),
            sessionmaker(autocommit, expire_on_commit=False),
        )
    return _sessions[key]


def get_engine(url: str | None = None) -> Engine:
    engine = _factories(url, wait_for_disk=True)[0].kw["bind"]
    assert isinstance(engine, Engine)
    return engine


@contextmanager
def session_scope(
    url: str | None = None, *, autocommit: bool = False, wait_for_disk: bool = True
) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises.

    ``autocommit=True`` is for a block of one statement (a compare-and-set): on Postgres it
    commits on its own, in one round trip instead of three (BEGIN, the statement, COMMIT). On
    SQLite the block is a transaction either way.

    ``wait_for_disk=False``: the commit returns before Postgres has flushed it to disk
    (``synchronous_commit=off``), and is visible to everyone at once. If Postgres itself
    crashes, the last fraction of a second of such commits is lost, never a part of one. Only
    for the farm's own bookkeeping, which the farm redoes when it is lost; never for what a
    client has been told, such as an accepted job or a final state."""
    transactions, statements = _factories(url, wait_for_disk)
    with (statements if autocommit else transactions).begin() as session:
        yield session


def dispose_engines() -> None:
    """Close every pooled connection (tests, and worker processes after a fork)."""
    for transactions, _ in _sessions.values():
        transactions.kw["bind"].dispose()
    _sessions.clear()


def _ping_idle_connections(engine: Engine) -> None:
    """Check a connection that sat in the pool a while before handing it out; raising
    DisconnectionError makes the pool replace it with a new one."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def used(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["used"] = monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if monotonic() - record.info["used"] < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError() from error


def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Embedded mode writes from several threads: WAL and a busy timeout instead of errors."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_ini() -> Path:
    """alembic.ini of the checkout (editable install) or of the working directory (images)."""
    beside = Path(__file__).resolve().parent.parent / "alembic.ini"
    return beside if beside.exists() else Path.cwd() / "alembic.ini"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (``alembic upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(alembic_ini()))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
