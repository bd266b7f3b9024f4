"""Database access: engines and sessions, built from settings on first use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_settings

_sessions: dict[str, sessionmaker[Session]] = {}


def _factory(url: str | None) -> sessionmaker[Session]:
    settings = get_settings().database
    url = url or settings.url
    if url not in _sessions:
        options = {"pool_size": settings.pool_size} if url.startswith("postgresql") else {}
        engine = create_engine(url, pool_pre_ping=True, **options)
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
