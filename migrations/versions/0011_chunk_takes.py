"""a chunk keeps its takes: which one it is on, what the checks found of each, and whether its
kept take is suspect

``chunk.take``: the take generated next or kept (0 the first; its seed follows from the chunk's);
``chunk.takes``: each checked take as ``{"take", "stage", "reasons"}`` (null: none checked yet);
``chunk.suspect``: why the kept take failed, where every take did (null: it passed);
``chapter.checks``: what its stitch found of its chunks' checks, for the job's report.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chunk", sa.Column("take", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("chunk", sa.Column("takes", sa.JSON(), nullable=True))
    op.add_column("chunk", sa.Column("suspect", sa.Text(), nullable=True))
    op.add_column("chapter", sa.Column("checks", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("chapter", "checks")
    op.drop_column("chunk", "suspect")
    op.drop_column("chunk", "takes")
    op.drop_column("chunk", "take")
