"""The live gpu workers and the chunks each holds at once: the dispatcher's window is a
multiple of their sum (``shared.farm.dispatch``). Each gpu worker refreshes its row every
``dispatch.heartbeat_s`` (``workers.engine_host``) and removes it when it stops; a row not
refreshed for three heartbeats is a worker gone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from shared.farm.context import FarmContext
from shared.infra.models import GpuWorker, utcnow


def live_slots(session: Session, heartbeat_s: float) -> int:
    """Chunks the live gpu workers hold at once, all together: those seen in the last three
    heartbeats."""
    alive_since = utcnow() - timedelta(seconds=3 * heartbeat_s)
    slots = select(func.coalesce(func.sum(GpuWorker.slots), 0)).where(
        GpuWorker.seen_at > alive_since
    )
    return int(session.scalar(slots) or 0)


def register_gpu_worker(farm: FarmContext, name: str, slots: int) -> None:
    """A gpu worker's heartbeat: it is alive and holds ``slots`` chunks at once."""
    with farm.sessions() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        upsert = dialect.insert(GpuWorker).values(name=name, slots=slots, seen_at=utcnow())
        session.execute(
            upsert.on_conflict_do_update(
                index_elements=[GpuWorker.name],
                set_={"slots": upsert.excluded.slots, "seen_at": upsert.excluded.seen_at},
            )
        )


def forget_gpu_worker(farm: FarmContext, name: str) -> None:
    """A gpu worker leaving: its slots leave the window at once."""
    with farm.sessions() as session:
        session.execute(delete(GpuWorker).where(GpuWorker.name == name))
