"""the web page's sessions, and speech requests that go ahead of books

``web_session``: a signed-in browser. The cookie carries a random token; the row keeps only its
SHA-256 (a leaked database does not sign anyone in), the tenant, the key it was opened with
(revoking the key ends the session), the form's CSRF token and when it expires.
``job.interactive``: someone is waiting on the job (OpenAI's speech endpoint, a voice's sample):
its chunks go ahead of book chunks however many it has, like a short job's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "job", sa.Column("interactive", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_table(
        "web_session",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "key_id", sa.Uuid(), sa.ForeignKey("api_key.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_session_expires_at", "web_session", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_session_expires_at", "web_session")
    op.drop_table("web_session")
    op.drop_column("job", "interactive")
