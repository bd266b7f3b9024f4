"""books: chapters as units of progress; what a book says of itself; how its files are made

``chapter``: one row per chapter, made (``done``) as soon as its chunks are, with its file, its
ACX report and the job version it was made for; its status changes write job events too.
``job``: the input's author, language and cover (a key in the object store), the preset and the
mastering it resolved to, the lexicon entries applied, the outputs and their version.
``tenant``: its pronunciation lexicon.
``chunk``: the caption text where a lexicon respelled the spoken one, and the chunk's energy (a
file's RMS for ACX). An index serves the chapters' progress.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Not batch operations: on SQLite a batch rebuilds the table and drops its event triggers.
JOB_COLUMNS = [
    sa.Column("author", sa.String(500), nullable=True),
    sa.Column("language", sa.String(35), nullable=True),
    sa.Column("cover_key", sa.String(500), nullable=True),
    sa.Column("preset", sa.String(16), nullable=True),
    sa.Column("mastering", sa.JSON(), nullable=False, server_default="{}"),
    sa.Column("lexicon", sa.JSON(), nullable=False, server_default="{}"),
    sa.Column("outputs", sa.JSON(), nullable=False, server_default="[]"),
    sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
]
CHUNK_COLUMNS = [
    sa.Column("caption", sa.Text(), nullable=True),
    sa.Column("energy", sa.Float(), nullable=True),
]


POSTGRES = [
    """
    CREATE FUNCTION lyre_chapter_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_event (job_id, kind, data, created_at)
        VALUES (NEW.job_id, 'chapter.' || NEW.status, json_build_object(
            'chapter', NEW.index, 'version', NEW.version
        ), clock_timestamp());
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER chapter_moved AFTER UPDATE OF status ON chapter FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION lyre_chapter_event()
    """,
]
SQLITE = [
    """
    CREATE TRIGGER chapter_moved AFTER UPDATE OF status ON chapter FOR EACH ROW
    WHEN OLD.status IS NOT NEW.status BEGIN
        INSERT INTO job_event (job_id, kind, data, created_at)
        VALUES (NEW.job_id, 'chapter.' || NEW.status, json_object(
            'chapter', NEW."index", 'version', NEW.version
        ), strftime('%Y-%m-%d %H:%M:%f000', 'now'));
    END
    """,
]


def _backfill(postgres: bool) -> None:
    """Jobs from before: their programme as their one output, their format as their mastering,
    and a chapter row per chapter their chunks name (waiting while the job is active), so that
    a job in flight during the upgrade is stitched as a new one would be."""
    build = "json_build" if postgres else "json"
    op.execute(
        f"UPDATE job SET mastering = {build}_object('format', format, 'chapter_format', format)"
    )
    op.execute(
        f"UPDATE job SET outputs = {build}_array({build}_object("
        "'kind', 'programme', 'format', format, 'key', output_key, 'version', 1))"
        " WHERE output_key IS NOT NULL"
    )
    op.execute(
        'INSERT INTO chapter (job_id, "index", title, status, version)'
        " SELECT DISTINCT chunk.job_id, chunk.chapter, '',"
        " CASE WHEN job.status IN ('queued', 'running') THEN 'waiting' ELSE 'done' END, 1"
        " FROM chunk JOIN job ON job.id = chunk.job_id"
    )


def upgrade() -> None:
    op.add_column("tenant", sa.Column("lexicon", sa.JSON(), nullable=False, server_default="{}"))
    op.create_table(
        "chapter",
        sa.Column("job_id", sa.Uuid(), sa.ForeignKey("job.id", ondelete="CASCADE")),
        sa.Column("index", sa.Integer()),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("output_key", sa.String(500), nullable=True),
        sa.Column("samples", sa.BigInteger(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("job_id", "index"),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)
    for column in JOB_COLUMNS:
        op.add_column("job", column)
    for column in CHUNK_COLUMNS:
        op.add_column("chunk", column)
    op.create_index("ix_chunk_job_chapter", "chunk", ["job_id", "chapter", "status"])
    _backfill(postgres)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER chapter_moved ON chapter")
        op.execute("DROP FUNCTION lyre_chapter_event()")
    op.drop_table("chapter")
    op.drop_index("ix_chunk_job_chapter", "chunk")
    postgres = op.get_bind().dialect.name == "postgresql"
    tenant = [sa.Column("lexicon", sa.JSON())]
    for table, columns in (("chunk", CHUNK_COLUMNS), ("job", JOB_COLUMNS), ("tenant", tenant)):
        for column in reversed(columns):
            if postgres:
                op.drop_column(table, column.name)
            else:  # SQLite 3.35+ drops a column in place, keeping the table's triggers
                op.execute(f'ALTER TABLE {table} DROP COLUMN "{column.name}"')
