"""Database access: engines and sessions, built from settings on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_settings

_sessions: dict[str, sessionmaker[Session]] = {}


def _factory(url: str | None) -> sessionmaker[Session]:
    settings = get_settings().database
    url = url or settings.url
    if url not in _sessions:
        options = {"pool_size": settings.pool_size} if url.startswith("postgresql") else {}
        engine = create_engine(url, pool_pre_ping=True, **options)
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        _sessions[url] = sessionmaker(engine, expire_on_commit=False)
    return _sessions[url]


def get_engine(url: str | None = None) -> Engine:
    engine = _factory(url).kw["bind"]
    assert isinstance(engine, Engine)
    return engine


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with _factory(url).begin() as session:
        yield session


def dispose_engines() -> None:
    """Close every pooled connection (tests, and worker processes after a fork)."""
    for factory in _sessions.values():
        factory.kw["bind"].dispose()
    _sessions.clear()


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
