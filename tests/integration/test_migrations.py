"""The schema comes from Alembic, up and down, on the real Postgres and on SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import MetaData, create_engine, inspect, select

from shared.infra.db import dispose_engines, migrate, session_scope
from shared.infra.models import Base, Chapter, Chunk, Job
from tests.services import create_database, drop_database

TENANT, DONE, RUNNING = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NOW = datetime(2026, 11, 1, tzinfo=UTC)

TABLES = {
    "tenant",
    "api_key",
    "job",
    "chunk",
    "chapter",
    "web_session",
    "job_event",
    "webhook_delivery",
    "webhook_attempt",
    "tenant_usage",
    "gpu_worker",
    "deleted_job",
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


def _to(url: str, revision: str, direction: str = "upgrade") -> None:
    from alembic import command
    from alembic.config import Config

    from shared.infra.db import alembic_ini

    config = Config(str(alembic_ini()))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    getattr(command, direction)(config, revision)


def _at_revision(url: str, dialect: str, revision: str) -> tuple[Any, MetaData, Any]:
    """The database taken down to ``revision`` with a tenant in it: its engine, its tables as
    that revision left them, and how the Uuid type keeps an id on this dialect."""
    if dialect == "sqlite":
        migrate(url)
    _to(url, revision, "downgrade")
    engine = create_engine(url)
    old = MetaData()
    old.reflect(engine, only=["tenant", "job", "chunk"])

    def key(u: uuid.UUID) -> object:
        return u.hex if dialect == "sqlite" else u

    with engine.begin() as db:
        db.execute(
            old.tables["tenant"].insert(),
            {"id": key(TENANT), "name": "old", "webhook_secret": "", "created_at": NOW},
        )
    return engine, old, key


def _old_job(key: Any, job: uuid.UUID, status: str, chunks: int, **columns: Any) -> dict:
    """A job row as an earlier revision wrote it."""
    return {
        "id": key(job),
        "tenant_id": key(TENANT),
        "status": status,
        "voice": "tara",
        "format": "wav",
        "engine": "espeak",
        "metadata": {},
        "chunks_total": chunks,
        "chunks_done": 0,
        "audio_samples": 0,
        "warnings": {},
        "created_at": NOW,
        **columns,
    }


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_jobs_from_before_books_keep_their_audio_and_finish(tmp_path, dialect):
    """0004 on a farm with jobs: a finished job's programme becomes its one output, its format
    its mastering; a running job gets chapter rows to wait on, so that it is stitched."""
    url = create_database() if dialect == "postgresql" else f"sqlite:///{tmp_path / 'l.db'}"
    try:
        engine, old, key = _at_revision(url, dialect, "0003")
        with engine.begin() as db:
            for job, status, output in (
                (DONE, "succeeded", "jobs/d/output.wav"),
                (RUNNING, "running", None),
            ):
                row = _old_job(key, job, status, 2, chunks_done=1, output_key=output)
                db.execute(old.tables["job"].insert(), row)
                for index in (0, 1):
                    db.execute(
                        old.tables["chunk"].insert(),
                        {
                            "job_id": key(job),
                            "index": index,
                            "status": "done",
                            "text": "Hi.",
                            "voice": "tara",
                            "boundary": "start",
                            "chapter": index,
                            "attempts": 0,
                        },
                    )
        engine.dispose()
        _to(url, "head")
        with session_scope(url) as session:
            done, running = session.get(Job, DONE), session.get(Job, RUNNING)
            assert done.outputs == [
                {"kind": "programme", "format": "wav", "key": "jobs/d/output.wav", "version": 1}
            ]
            assert running.outputs == [] and running.mastering["format"] == "wav"
            chapters = session.scalars(
                select(Chapter).order_by(Chapter.job_id, Chapter.index)
            ).all()
            assert {(c.job_id, c.index, c.status) for c in chapters} == {
                (DONE, 0, "done"),
                (DONE, 1, "done"),
                (RUNNING, 0, "waiting"),
                (RUNNING, 1, "waiting"),
            }
    finally:
        dispose_engines()
        if dialect == "postgresql":
            drop_database(url)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_chunks_queued_before_the_dispatcher_count_as_sent(tmp_path, dialect):
    """0005 on a farm with a running job: its pending chunks were put on the queue when it
    was accepted, so they are marked sent (in the window, back with their lease if lost); a
    failed job's are not, and the job's priority and the tenant's weight take defaults."""
    url = create_database() if dialect == "postgresql" else f"sqlite:///{tmp_path / 'l.db'}"
    try:
        engine, old, key = _at_revision(url, dialect, "0004")
        with engine.begin() as db:
            for job, status in ((RUNNING, "running"), (DONE, "failed")):
                db.execute(old.tables["job"].insert(), _old_job(key, job, status, 1))
                db.execute(
                    old.tables["chunk"].insert(),
                    {
                        "job_id": key(job),
                        "index": 0,
                        "status": "pending",
                        "text": "Hi.",
                        "voice": "tara",
                        "boundary": "start",
                        "chapter": 0,
                        "attempts": 0,
                    },
                )
        engine.dispose()
        _to(url, "head")
        with session_scope(url) as session:
            assert session.get(Chunk, (RUNNING, 0)).sent_at is not None
            assert session.get(Chunk, (DONE, 0)).sent_at is None
            assert session.get(Job, RUNNING).priority == 0
            assert session.get(Job, RUNNING).interactive is False  # 0006: nobody waits on it
    finally:
        dispose_engines()
        if dialect == "postgresql":
            drop_database(url)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_chapters_count_their_chunks_from_the_rows_there(tmp_path, dialect):
    """0012 on a farm with a running job: each chapter's counters start as its chunk rows say
    (the poll reads them from then on)."""
    url = create_database() if dialect == "postgresql" else f"sqlite:///{tmp_path / 'l.db'}"
    try:
        engine, old, key = _at_revision(url, dialect, "0011")
        old.reflect(engine, only=["chapter"])
        statuses = {0: ["done", "done", "pending"], 1: ["generated"], 2: []}
        with engine.begin() as db:
            db.execute(old.tables["job"].insert(), _old_job(key, RUNNING, "running", 4))
            index = 0
            for chapter, chunks in statuses.items():
                db.execute(
                    old.tables["chapter"].insert(),
                    {
                        "job_id": key(RUNNING),
                        "index": chapter,
                        "title": "",
                        "status": "waiting",
                        "version": 1,
                    },
                )
                for status in chunks:
                    db.execute(
                        old.tables["chunk"].insert(),
                        {
                            "job_id": key(RUNNING),
                            "index": index,
                            "status": status,
                            "text": "Hi.",
                            "voice": "tara",
                            "boundary": "start",
                            "chapter": chapter,
                            "attempts": 0,
                        },
                    )
                    index += 1
        engine.dispose()
        _to(url, "head")
        with session_scope(url) as session:
            chapters = session.scalars(select(Chapter).order_by(Chapter.index)).all()
            assert [(c.chunks_done, c.chunks_total) for c in chapters] == [(2, 3), (0, 1), (0, 0)]
    finally:
        dispose_engines()
        if dialect == "postgresql":
            drop_database(url)
