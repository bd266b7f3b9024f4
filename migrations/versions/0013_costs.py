"""what work cost: engine and CPU seconds and bytes stored, per chunk, chapter and job, and per
tenant and day

``chunk.engine_s``: its share of the engine's time over its takes (the engine's busy time split
among the chunks in it at each moment), ``chunk.decode_cpu_s``: CPU seconds of its decodes;
both since it was last made (a redo starts them again). ``chapter`` and ``job``: the same
summed as chunks are finished (never taken back: work redone cost twice), with the stitch's CPU
seconds (reading and shaping, and encoding apart) and the bytes stored (chunk audio and files).
``job.billed``: what of the job's totals is already in ``tenant_usage``, which now keeps a
tenant's audio seconds, engine and CPU seconds and bytes per UTC day beside its characters
(added when a job ends).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 06:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COSTS = (
    ("engine_s", sa.Float()),
    ("decode_cpu_s", sa.Float()),
    ("stitch_cpu_s", sa.Float()),
    ("encode_cpu_s", sa.Float()),
    ("stored_bytes", sa.BigInteger()),
)
USAGE = (
    ("audio_s", sa.Float()),
    ("engine_s", sa.Float()),
    ("cpu_s", sa.Float()),
    ("stored_bytes", sa.BigInteger()),
)


def upgrade() -> None:
    op.add_column("chunk", sa.Column("engine_s", sa.Float(), nullable=True))
    op.add_column("chunk", sa.Column("decode_cpu_s", sa.Float(), nullable=True))
    for table in ("chapter", "job"):
        for name, kind in COSTS:
            op.add_column(table, sa.Column(name, kind, nullable=False, server_default="0"))
    op.add_column("job", sa.Column("billed", sa.JSON(), nullable=True))
    for name, kind in USAGE:
        op.add_column("tenant_usage", sa.Column(name, kind, nullable=False, server_default="0"))


def downgrade() -> None:
    for name, _ in reversed(USAGE):
        op.drop_column("tenant_usage", name)
    op.drop_column("job", "billed")
    for table in ("job", "chapter"):
        for name, _ in reversed(COSTS):
            op.drop_column(table, name)
    op.drop_column("chunk", "decode_cpu_s")
    op.drop_column("chunk", "engine_s")
