"""api keys may expire

``api_key.expires_at``: past it the key authenticates nothing (and a web session opened with it
ends), as a revoked key; a rotated key keeps working until it, for the grace period asked for.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_key", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("api_key", "expires_at")
