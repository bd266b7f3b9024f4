"""a chapter counts its chunks: done and in all, moved by the decode that finishes a chunk

``chapter.chunks_total``: its chunks (set at intake, and when the chapter is redone);
``chapter.chunks_done``: those decoded, added to in the statement that marks a chunk done.
A job's poll reads them instead of counting the chunk rows of every chapter at each request.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OF_CHAPTER = 'chunk.job_id = chapter.job_id AND chunk.chapter = chapter."index"'


def upgrade() -> None:
    for name in ("chunks_total", "chunks_done"):
        op.add_column("chapter", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE chapter SET"
        f" chunks_total = (SELECT count(*) FROM chunk WHERE {_OF_CHAPTER}),"
        f" chunks_done = (SELECT count(*) FROM chunk WHERE {_OF_CHAPTER} AND status = 'done')"
    )


def downgrade() -> None:
    op.drop_column("chapter", "chunks_done")
    op.drop_column("chapter", "chunks_total")
