"""Database access: engines and sessions, built from settings on first use."""

from __future__ import annotations

import select
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from time import monotonic
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    exc,
    text,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, sessionmaker

from shared.infra.settings import get_settings

# A pooled connection is pinged before use only after idling this long, or when the server has
# written to it at rest (``told_something``): a busy worker reuses its connection every few
# milliseconds, and a ping per checkout would be one more round trip per transaction, while
# one that sat idle may have been cut silently by a proxy or a network.
PING_AFTER_IDLE_S = 10.0

# url -> (transactions, bookkeeping connections); on SQLite both share the one engine
_databases: dict[str, tuple[sessionmaker[Session], Engine]] = {}


def _database(url: str | None) -> tuple[sessionmaker[Session], Engine]:
    settings = get_settings().database
    url = url or settings.url
    if url not in _databases:
        if url.startswith("postgresql"):
            durable = create_engine(url, pool_size=settings.pool_size)
            # a startup parameter: a pooler in front of Postgres must pass it on. No overflow:
            # SQLAlchemy closes a connection opened past the pool's size when it is given back,
            # so a worker whose threads outnumber the pool started a Postgres backend every few
            # statements under load (bench/scale.py: 55 a second, most of Postgres's CPU); its
            # threads now wait their turn for one of the pool's, each a statement or two long.
            bookkeeping = create_engine(
                url,
                pool_size=settings.pool_size,
                max_overflow=0,
                isolation_level="AUTOCOMMIT",
                connect_args={"options": "-c synchronous_commit=off"},
            )
            _ping_idle_connections(bookkeeping)
        else:  # SQLite runs in this process: a transaction costs no round trips
            durable = bookkeeping = create_engine(url)
            event.listen(durable, "connect", _sqlite_pragmas)
        _ping_idle_connections(durable)
        _databases[url] = (sessionmaker(durable, expire_on_commit=False), bookkeeping)
    return _databases[url]


def get_engine(url: str | None = None) -> Engine:
    engine = _database(url)[0].kw["bind"]
    assert isinstance(engine, Engine)
    return engine


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with _database(url)[0].begin() as session:
        yield session


@contextmanager
def bookkeeping_scope(url: str | None = None) -> Iterator[Connection]:
    """A connection for one statement of the farm's own bookkeeping (a claim, an advance, a
    lease): on Postgres each statement commits on its own, in one round trip instead of
    three (BEGIN, the statement, COMMIT), and without waiting for the disk
    (``synchronous_commit=off``): if Postgres itself crashes, the last fraction of a second of
    such commits is lost, never a part of one. The farm redoes lost bookkeeping as it does
    after a lost message; what a client has been told (an accepted job, a final state) goes
    through ``session_scope``, whose durable commit also flushes every commit before it.

    Core, not the ORM: a Session around a single statement cost as much CPU as the statement.
    On SQLite the block is a transaction on the one engine, so it stays atomic."""
    engine = _database(url)[1]
    with engine.begin() if engine.dialect.name == "sqlite" else engine.connect() as connection:
        yield connection


def take_batch(model: Any, key: Sequence[Any], picked: Any, *returning: Any, **values: Any) -> Any:
    """An UPDATE of the rows ``picked`` selects, at most ``:batch`` of them, locked and skipping
    rows another transaction holds (``FOR UPDATE SKIP LOCKED``), that sets ``values`` and returns
    their ``key`` and ``returning``: the reconciler's way to take work no one else is taking."""
    batch = picked.limit(bindparam("batch")).with_for_update(skip_locked=True)
    rows = tuple_(*key) if len(key) > 1 else key[0]
    return update(model).where(rows.in_(batch)).values(**values).returning(*key, *returning)


def notify_at_commit(target: Session | Connection, channel: str) -> None:
    """Postgres NOTIFY on ``channel`` when the transaction commits (at once on a bookkeeping
    connection); elsewhere nothing: embedded mode has no listeners."""
    bind = target.get_bind() if isinstance(target, Session) else target
    if bind.dialect.name == "postgresql":
        target.execute(text(f"NOTIFY {channel}"))


def dispose_engines() -> None:
    """Close every pooled connection (tests, and worker processes after a fork)."""
    for transactions, bookkeeping in _databases.values():
        transactions.kw["bind"].dispose()
        bookkeeping.dispose()
    _databases.clear()


def _ping_idle_connections(engine: Engine) -> None:
    """Check a connection that sat in the pool a while, or that the server wrote to while it
    sat there, before handing it out; raising DisconnectionError makes the pool replace it
    with a new one (each of a restart's dead connections is found so, without a round trip)."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def used(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["used"] = monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        recent = monotonic() - record.info["used"] < PING_AFTER_IDLE_S
        if recent and not told_something(dbapi_connection):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise exc.DisconnectionError() from error


def told_something(dbapi_connection: Any) -> bool:
    """Whether the server wrote to a connection no one is using: Postgres does so as it ends
    it (a restart, ``pg_terminate_backend``: "terminating connection due to administrator
    command", then the socket closes). A poll of the socket that waits for nothing, no round
    trip; SQLite has no socket."""
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        return False
    try:
        readable, _, _ = select.select([fileno()], [], [], 0)
    except Exception:  # psycopg refuses a closed connection's fileno: ping, and replace it
        return True
    return bool(readable)


def _sqlite_pragmas(connection, _record) -> None:  # type: ignore[no-untyped-def]
    """Embedded mode writes from several threads: WAL and a busy timeout instead of errors."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_ini() -> Path:
    """alembic.ini of the checkout (editable install) or of the working directory (images)."""
    beside = Path(__file__).resolve().parents[2] / "alembic.ini"  # shared/infra/db.py
    return beside if beside.exists() else Path.cwd() / "alembic.ini"


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (``alembic upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(alembic_ini()))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
