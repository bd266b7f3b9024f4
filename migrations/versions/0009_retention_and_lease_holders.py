"""files kept for a retention period, deleted jobs swept again, stitch leases with a holder

``tenant.retention_days``: how long a job's files are kept after it ends (null: the farm's
setting). ``job.chunks_expired_at``: when its chunk audio was removed (sooner than its files;
a chapter can no longer be redone from then on). ``job.expired_at``: when every object of the
job was removed; the row stays, its files listed as gone.
``deleted_job``: a job deleted through the API, swept again a lease later for objects that a
stage which had claimed its work before the delete wrote after it.
``job.stitch_holder`` and ``chapter.stitch_holder``: the stitch that holds the lease; it renews
and completes the lease only while it is still the holder.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_EXPIRED = "expired_at IS NULL"


def upgrade() -> None:
    op.add_column("tenant", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column("job", sa.Column("chunks_expired_at", sa.DateTime(timezone=True)))
    op.add_column("job", sa.Column("expired_at", sa.DateTime(timezone=True)))
    op.add_column("job", sa.Column("stitch_holder", sa.String(32)))
    op.add_column("chapter", sa.Column("stitch_holder", sa.String(32)))
    op.create_index(
        "ix_job_to_expire",
        "job",
        ["finished_at"],
        postgresql_where=sa.text(NOT_EXPIRED),
        sqlite_where=sa.text(NOT_EXPIRED),
    )
    op.create_table(
        "deleted_job",
        sa.Column("job_id", sa.Uuid(), primary_key=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_deleted_job_deleted_at", "deleted_job", ["deleted_at"])


def downgrade() -> None:
    op.drop_index("ix_deleted_job_deleted_at", "deleted_job")
    op.drop_table("deleted_job")
    op.drop_index("ix_job_to_expire", "job")
    op.drop_column("chapter", "stitch_holder")
    for column in ("stitch_holder", "expired_at", "chunks_expired_at"):
        op.drop_column("job", column)
    op.drop_column("tenant", "retention_days")
