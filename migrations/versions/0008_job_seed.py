"""a job may carry a seed

``job.seed``: when set, every chunk's sampling seed derives from it and the chunk's index (not
from the job's id), so the same text, voice, settings and seed give the same bytes on any farm.
Null keeps the old behaviour: each job samples afresh.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job", sa.Column("seed", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("job", "seed")
