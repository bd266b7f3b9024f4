"""The schema comes from Alembic, up and down, on the real Postgres and on SQLite."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from shared.infra.db import migrate
from shared.infra.models import Base
from tests.services import create_database, drop_database

TABLES = {
    "tenant",
    "api_key",
    "job",
    "chunk",
    "chapter",
    "job_event",
    "webhook_delivery",
    "webhook_attempt",
}


def downgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from shared.infra.db import alembic_ini

    config = Config(str(alembic_ini()))
    config.attributes["url"] = url
    command.downgrade(config, "base")


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_on_postgres():
    url = create_database()  # already at head
    try:
        assert tables(url) == TABLES == set(Base.metadata.tables)
        downgrade(url)
        assert tables(url) == set()
        migrate(url)
        assert tables(url) == TABLES
    finally:
        drop_database(url)


def test_the_same_schema_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'lyre.db'}"
    migrate(url)
    assert tables(url) == TABLES
    downgrade(url)
    assert tables(url) == set()


def test_models_match_the_migrations():
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    url = create_database()
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()
        drop_database(url)
