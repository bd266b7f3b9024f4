"""The end of a chunk's stage as one round trip on Postgres: the chunk moved by its edge and what
follows from it in the same statement (``WITH … UPDATE``). On SQLite (embedded mode), which has
no UPDATE in WITH and no listener to wake, the same edges run one by one in the bookkeeping
block's transaction.

A chunk's way through the farm costs Postgres a round trip per statement (`bench/scale.py`:
0.15-0.2 ms of a backend's CPU each besides the statement's own work), so what can ride along
with the state change does.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from shared.farm.transitions import (
    CHUNK_GENERATED_TO_DONE,
    CHUNK_PENDING_TO_GENERATED,
    COUNT_DONE_CHUNK,
    COUNT_DONE_IN_CHAPTER,
)
from shared.infra.models import Chapter, Chunk
from shared.infra.queues import DISPATCH_CHANNEL

# The engine's output into the row, and the dispatcher woken: the chunk's place in the window is
# free. pg_notify is sent at commit, as NOTIFY is. A row if the chunk moved, none if not.
CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED = select(func.pg_notify(DISPATCH_CHANNEL, "")).select_from(
    CHUNK_PENDING_TO_GENERATED.returning(Chunk.index).cte("generated")
)

# The chunk done and counted on its job and its chapter: a round trip instead of five (BEGIN,
# three, COMMIT). Whether the chunk moved, whether it was its job's last, and whether its
# chapter's count is now full.
_MOVED = CHUNK_GENERATED_TO_DONE.returning(Chunk.index).cte("moved")
_COUNTED = COUNT_DONE_CHUNK.where(select(_MOVED).exists()).cte("counted")
_IN_CHAPTER = (
    COUNT_DONE_IN_CHAPTER.where(select(_MOVED).exists())
    .returning((Chapter.chunks_done >= Chapter.chunks_total).label("full"))
    .cte("chapter")
)
CHUNK_GENERATED_TO_DONE_AND_COUNTED = select(
    select(_MOVED).exists(),
    func.coalesce(select(_COUNTED.c.last).scalar_subquery(), False),
    func.coalesce(select(_IN_CHAPTER.c.full).scalar_subquery(), False),
)


def generated(connection: Connection, params: dict[str, Any]) -> bool:
    """The chunk generated (``CHUNK_PENDING_TO_GENERATED``'s parameters); False if another
    worker moved it first."""
    if connection.dialect.name == "postgresql":
        return bool(connection.execute(CHUNK_PENDING_TO_GENERATED_AND_NOTIFIED, params).all())
    return bool(connection.execute(CHUNK_PENDING_TO_GENERATED, params).rowcount)


def decoded(connection: Connection, params: dict[str, Any]) -> tuple[bool, bool]:
    """The chunk done and counted (``CHUNK_GENERATED_TO_DONE``'s and the counts' parameters):
    whether it moved, and whether its chapter is now complete, so that its stitch may be
    leased. On SQLite every chunk that moved says so: the lease's own statement checks."""
    if connection.dialect.name == "postgresql":
        moved, _, full = connection.execute(CHUNK_GENERATED_TO_DONE_AND_COUNTED, params).one()
        return moved, full
    moved = bool(connection.execute(CHUNK_GENERATED_TO_DONE, params).rowcount)
    if moved:
        connection.execute(COUNT_DONE_CHUNK, params)
        connection.execute(COUNT_DONE_IN_CHAPTER, params)
    return moved, moved
