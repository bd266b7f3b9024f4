"""a generated chunk's speech lives in its row until it is decoded

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 02:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("chunk") as batch:  # batch: SQLite (embedded mode) too
        batch.add_column(sa.Column("speech", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chunk") as batch:
        batch.drop_column("speech")
