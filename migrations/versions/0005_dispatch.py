"""dispatch: Postgres decides what runs next, tenants share the GPUs

``chunk``: the dispatcher's marks, ``sent_at`` (put on the gpu queue) and ``taken_at`` (a gpu
worker took it), with two partial indexes: the chunks still waiting in Postgres, in a job's
order, and the window (sent and not yet generated).
``job``: its priority among its tenant's jobs, and the characters it was submitted with.
``tenant``: its weight and its own limits; ``tenant_usage``: characters per UTC day.
``gpu_worker``: the live gpu workers and their slots (the window's size).

Chunks pending when this runs were put on the queue at submission, as before: they are marked
sent, so that the dispatcher counts them in the window and a lost one comes back with its lease.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 04:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Not batch operations: on SQLite a batch rebuilds the table and drops its event triggers.
COLUMNS = {
    "chunk": [
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
    ],
    "job": [
        sa.Column("priority", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("chars", sa.Integer(), nullable=False, server_default="0"),
    ],
    "tenant": [
        sa.Column("weight", sa.Float(), nullable=False, server_default="1"),
        sa.Column("running_jobs", sa.Integer(), nullable=True),
        sa.Column("chars_per_day", sa.BigInteger(), nullable=True),
        sa.Column("requests_per_s", sa.Float(), nullable=True),
    ],
}
TO_SEND = "status = 'pending' AND sent_at IS NULL"
SENT = "status = 'pending' AND sent_at IS NOT NULL"


def upgrade() -> None:
    for table, columns in COLUMNS.items():
        for column in columns:
            op.add_column(table, column)
    for name, columns, where in (
        ("ix_chunk_to_send", ["job_id", "chapter", "index"], TO_SEND),
        ("ix_chunk_sent", ["job_id"], SENT),
    ):
        op.create_index(
            name,
            "chunk",
            columns,
            postgresql_where=sa.text(where),
            sqlite_where=sa.text(where),
        )
    op.create_table(
        "tenant_usage",
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("tenant.id", ondelete="CASCADE")),
        sa.Column("day", sa.Date()),
        sa.Column("chars", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day"),
    )
    op.create_table(
        "gpu_worker",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "UPDATE chunk SET sent_at = CURRENT_TIMESTAMP WHERE status = 'pending'"
        " AND job_id IN (SELECT id FROM job WHERE status IN ('queued', 'running'))"
    )


def downgrade() -> None:
    op.drop_table("gpu_worker")
    op.drop_table("tenant_usage")
    op.drop_index("ix_chunk_sent", "chunk")
    op.drop_index("ix_chunk_to_send", "chunk")
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, columns in COLUMNS.items():
        for column in reversed(columns):
            if postgres:
                op.drop_column(table, column.name)
            else:  # SQLite 3.35+ drops a column in place, keeping the table's triggers
                op.execute(f'ALTER TABLE {table} DROP COLUMN "{column.name}"')
