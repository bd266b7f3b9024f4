"""every job and chunk transition writes its job_event row (triggers); write-only columns dropped

A trigger on each table inserts the event in the statement that changes the status, so that no
code path can forget it: a job's event names the state entered (``job.running``) with its error
or output; a chunk's (``chunk.generated``) its index, chapter and attempts. ``job.text`` (the
normalised input, kept nowhere else but never read: the chunks hold the text),
``chunk.tokens`` and ``chunk.generated_at`` (the event records when) were written and never read.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

POSTGRES = [
    """
    CREATE FUNCTION lyre_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_event (job_id, kind, data, created_at)
        VALUES (NEW.id, 'job.' || NEW.status, json_strip_nulls(json_build_object(
            'error', NEW.error, 'output_key', NEW.output_key, 'samples', NEW.output_samples
        )), clock_timestamp());
        RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION lyre_chunk_event() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO job_event (job_id, kind, data, created_at)
        VALUES (NEW.job_id, 'chunk.' || NEW.status, json_build_object(
            'chunk', NEW.index, 'chapter', NEW.chapter, 'attempts', NEW.attempts
        ), clock_timestamp());
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER job_queued AFTER INSERT ON job FOR EACH ROW EXECUTE FUNCTION lyre_job_event()",
    """
    CREATE TRIGGER job_moved AFTER UPDATE OF status ON job FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION lyre_job_event()
    """,
    """
    CREATE TRIGGER chunk_moved AFTER UPDATE OF status ON chunk FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION lyre_chunk_event()
    """,
]

# SQLite (embedded mode): json_patch onto {} drops the null members, as json_strip_nulls does;
# the time is written as SQLAlchemy writes a DateTime there.
_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f000', 'now')"
_SQLITE_JOB_EVENT = f"""
    INSERT INTO job_event (job_id, kind, data, created_at)
    VALUES (NEW.id, 'job.' || NEW.status, json_patch('{{}}', json_object(
        'error', NEW.error, 'output_key', NEW.output_key, 'samples', NEW.output_samples
    )), {_SQLITE_NOW});
"""
SQLITE = [
    f"CREATE TRIGGER job_queued AFTER INSERT ON job FOR EACH ROW BEGIN {_SQLITE_JOB_EVENT} END",
    f"""
    CREATE TRIGGER job_moved AFTER UPDATE OF status ON job FOR EACH ROW
    WHEN OLD.status IS NOT NEW.status BEGIN {_SQLITE_JOB_EVENT} END
    """,
    f"""
    CREATE TRIGGER chunk_moved AFTER UPDATE OF status ON chunk FOR EACH ROW
    WHEN OLD.status IS NOT NEW.status BEGIN
        INSERT INTO job_event (job_id, kind, data, created_at)
        VALUES (NEW.job_id, 'chunk.' || NEW.status, json_object(
            'chunk', NEW."index", 'chapter', NEW.chapter, 'attempts', NEW.attempts
        ), {_SQLITE_NOW});
    END
    """,
]


def upgrade() -> None:
    with op.batch_alter_table("job") as batch:  # batch: SQLite (embedded mode) too
        batch.drop_column("text")
    with op.batch_alter_table("chunk") as batch:
        batch.drop_column("tokens")
        batch.drop_column("generated_at")
    # after the batch operations: on SQLite they rebuild the tables, and a table's triggers
    # go with it
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES if postgres else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    for trigger, table in (("chunk_moved", "chunk"), ("job_moved", "job"), ("job_queued", "job")):
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER {trigger} ON {table}")
        else:
            op.execute(f"DROP TRIGGER {trigger}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION lyre_chunk_event()")
        op.execute("DROP FUNCTION lyre_job_event()")
    with op.batch_alter_table("chunk") as batch:
        batch.add_column(sa.Column("generated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("tokens", sa.Integer(), nullable=True))
    with op.batch_alter_table("job") as batch:
        batch.add_column(sa.Column("text", sa.Text(), nullable=False, server_default=""))
