"""shared.infra.db on the real Postgres: bookkeeping statements commit on their own, a pooled
connection is checked only after it idled, yet a dead one is never handed out, and threads past
the pool's size take turns on its connections."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import create_engine, text

from shared.infra import db
from shared.infra.db import bookkeeping_scope, dispose_engines, session_scope


@pytest.fixture()
def url(database_url: str):
    with session_scope(database_url) as session:
        session.execute(text("CREATE TABLE IF NOT EXISTS probe (n integer)"))
        session.execute(text("TRUNCATE probe"))
    yield database_url
    dispose_engines()


def committed_rows(url: str) -> int:
    """What another connection sees."""
    other = create_engine(url)
    try:
        with other.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM probe")).scalar_one()
    finally:
        other.dispose()


def test_a_bookkeeping_statement_commits_on_its_own(url: str):
    with bookkeeping_scope(url) as connection:
        connection.execute(text("INSERT INTO probe VALUES (1)"))
        assert committed_rows(url) == 1
        connection.execute(text("INSERT INTO probe VALUES (2)"))
        assert committed_rows(url) == 2
    assert committed_rows(url) == 2


def test_a_session_commits_when_its_block_ends(url: str):
    with session_scope(url) as session:
        session.execute(text("INSERT INTO probe VALUES (1)"))
        assert committed_rows(url) == 0
    assert committed_rows(url) == 1


def test_threads_past_the_pool_take_turns_on_its_connections(url: str):
    """Sixteen threads at once on bookkeeping connections, the pool's size five: they wait for
    the pool's own rather than opening more. SQLAlchemy closes a connection opened past the
    pool when it is given back, so under load each of them was a Postgres backend started and
    ended for a statement or two."""

    def backend(_: int) -> int:
        with bookkeeping_scope(url) as connection:
            return connection.execute(text("SELECT pg_backend_pid() FROM pg_sleep(0.01)")).scalar()

    with ThreadPoolExecutor(16) as pool:
        backends = set(pool.map(backend, range(160)))
    assert len(backends) <= db.get_settings().database.pool_size == 5


def terminate_pooled_connections(url: str) -> None:
    with session_scope(url) as session:
        pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        # waits until it has ended (and so has sent the client its goodbye)
        connection.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    admin.dispose()


def test_a_connection_that_idled_is_pinged_and_replaced_when_dead(url, monkeypatch):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every checkout counts as after idling
    terminate_pooled_connections(url)
    with session_scope(url) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1


def test_a_busy_connection_is_pinged_only_when_the_server_wrote_to_it(url, monkeypatch):
    """The counterpart: no ping (a round trip) at a busy connection's checkout, unless the
    server wrote to it at rest, as Postgres does as it ends one: then the ping finds it dead
    and the pool hands out a new one."""
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 3600.0)
    dialect = type(db.get_engine(url).dialect)
    pings, ping = [], dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda *args: pings.append(1) or ping(*args))
    with session_scope(url) as session:
        session.execute(text("SELECT 1"))
    assert pings == []  # busy and quiet: handed out as it is
    terminate_pooled_connections(url)
    with session_scope(url) as session:
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    assert pings == [1]


def test_bookkeeping_does_not_wait_for_the_disk_and_the_rest_does(url: str):
    show = text("SHOW synchronous_commit")
    with bookkeeping_scope(url) as connection:
        assert connection.execute(show).scalar_one() == "off"
        connection.execute(text("INSERT INTO probe VALUES (1)"))
    with session_scope(url) as session:
        assert session.execute(show).scalar_one() == "on"
    assert committed_rows(url) == 1


def test_sqlite_bookkeeping_is_a_transaction_on_the_one_engine(tmp_path):
    """Embedded mode: a bookkeeping block that raises leaves nothing behind."""
    url = f"sqlite:///{tmp_path / 'lyre.db'}"
    try:
        with session_scope(url) as session:
            session.execute(text("CREATE TABLE probe (n integer)"))
            engine = session.get_bind()
        with pytest.raises(ZeroDivisionError), bookkeeping_scope(url) as connection:
            assert connection.engine is engine
            connection.execute(text("INSERT INTO probe VALUES (1)"))
            raise ZeroDivisionError
        with bookkeeping_scope(url) as connection:
            assert connection.execute(text("SELECT count(*) FROM probe")).scalar_one() == 0
    finally:
        dispose_engines()
