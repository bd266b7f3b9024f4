"""a chunk may carry what SSML asks of its audio

``chunk.pause_s``: the pause before it, where a ``<break time>`` set one (null: its boundary's);
``chunk.rate``: its speech's rate, where a ``<prosody rate>`` set one (null: the voice's own);
``chunk.marks``: its ``<mark>`` names, each with the spoken characters before it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 16:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chunk", sa.Column("pause_s", sa.Float(), nullable=True))
    op.add_column("chunk", sa.Column("rate", sa.Float(), nullable=True))
    op.add_column("chunk", sa.Column("marks", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("chunk", "marks")
    op.drop_column("chunk", "rate")
    op.drop_column("chunk", "pause_s")
