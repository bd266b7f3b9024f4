"""Leases held while slow work goes on: a stitch (a chapter's file, the book's files) and a
chunk in its engine.

Work is leased when it is sent (past the deadline, the reconciler sends it again). A stitch
claims its lease with a holder of its own; while it works, a thread renews the lease every
quarter lease, on the holder (compare-and-set), so that a stitch longer than a lease is not
sent again. A stitch that finds another holder (its own lease ran out, the reconciler sent the
work again and another stitch claimed it) stops before it uploads or completes anything: the
holder's result stands. A chunk in its engine is renewed the same way, held by the time its
gpu worker took it (the reconciler's return to the dispatcher clears that).
"""

from __future__ import annotations

import logging
import threading
import uuid
from types import TracebackType
from typing import Any

from sqlalchemy import BindParameter, Row, bindparam, or_, update
from sqlalchemy.orm import Session

from shared.farm.context import FarmContext
from shared.farm.states import ChapterStatus, ChunkStatus, JobStatus
from shared.farm.transitions import ALL_CHAPTERS_DONE, CHAPTER_JOB_ACTIVE, ITS_CHUNKS_DONE
from shared.infra.models import Chapter, Chunk, Job, utcnow

log = logging.getLogger(__name__)

_HOLDER: BindParameter[str] = bindparam("holder")
_THIS_CHAPTER = (Chapter.job_id == bindparam("job"), Chapter.index == bindparam("chapter"))

# Taken when nobody holds it (sent, not yet taken), or when its holder's lease ran out.
CLAIM_CHAPTER = (
    update(Chapter)
    .where(
        *_THIS_CHAPTER,
        Chapter.status == ChapterStatus.WAITING,
        ITS_CHUNKS_DONE,
        CHAPTER_JOB_ACTIVE,
        or_(Chapter.stitch_holder.is_(None), Chapter.lease_until < bindparam("now")),
    )
    .values(lease_until=bindparam("lease"), stitch_holder=_HOLDER)
    .returning(Chapter.title, Chapter.version)
)
RENEW_CHAPTER_LEASE = (
    update(Chapter)
    .where(*_THIS_CHAPTER, Chapter.stitch_holder == _HOLDER)
    .values(lease_until=bindparam("lease"))
)
RELEASE_CHAPTER = (
    update(Chapter)
    .where(*_THIS_CHAPTER, Chapter.stitch_holder == _HOLDER)
    .values(stitch_holder=None)
)

CLAIM_STITCH = (
    update(Job)
    .where(
        Job.id == bindparam("job"),
        Job.status == JobStatus.RUNNING,
        Job.chunks_done == Job.chunks_total,
        ALL_CHAPTERS_DONE,
        or_(Job.stitch_holder.is_(None), Job.stitch_lease_until < bindparam("now")),
    )
    .values(stitch_lease_until=bindparam("lease"), stitch_holder=_HOLDER)
    .returning(Job.format, Job.title, Job.version)
)
RENEW_STITCH_LEASE = (
    update(Job)
    .where(Job.id == bindparam("job"), Job.stitch_holder == _HOLDER)
    .values(stitch_lease_until=bindparam("lease"))
)
RELEASE_STITCH = (
    update(Job)
    .where(Job.id == bindparam("job"), Job.stitch_holder == _HOLDER)
    .values(stitch_holder=None)
)
# The book's stitch is sent by the chapter that completes the book: leased from then.
LEASE_BOOK_STITCH = (
    update(Job)
    .where(Job.id == bindparam("job"), Job.stitch_holder.is_(None))
    .values(stitch_lease_until=bindparam("lease"))
)

# A chunk in its engine, held since its gpu worker took it (``at``, the claim's taken_at).
RENEW_CHUNK_LEASE = (
    update(Chunk)
    .where(
        Chunk.job_id == bindparam("job"),
        Chunk.index == bindparam("idx"),
        Chunk.status == ChunkStatus.PENDING,
        Chunk.taken_at == bindparam("at"),
    )
    .values(lease_until=bindparam("lease"))
)


class LeaseLost(RuntimeError):
    """Another worker holds the lease now: this one stops before it writes its result."""


class Lease:
    """A lease held as ``holder`` (a new one per lease; ``ids`` bind the statements). ``with
    lease:`` renews it on a thread every quarter lease until the block ends; a block that fails
    gives it back (the holder cleared, the deadline kept), so that the task's retry claims it
    at once while the reconciler still waits for the deadline."""

    def __init__(self, farm: FarmContext, renew: Any, release: Any = None, **ids: Any) -> None:
        self.farm, self.renew_statement, self.release_statement = farm, renew, release
        self.params: dict[str, Any] = {**ids, "holder": uuid.uuid4().hex}
        self._lost, self._done = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    def claim(self, statement: Any) -> Row[Any] | None:
        """Run a claim statement as this holder; its row, or None where it is not ours."""
        with self.farm.bookkeeping() as connection:
            return connection.execute(statement, self._now()).first()

    def renew(self) -> None:
        """Extend the deadline now; LeaseLost where another holds it."""
        with self.farm.bookkeeping() as connection:
            kept = connection.execute(self.renew_statement, self._now()).rowcount
        if not kept:
            self._lost.set()
        self.check()

    def check(self) -> None:
        """LeaseLost if a renewal found another holder."""
        if self._lost.is_set():
            raise LeaseLost()

    def release_in(self, session: Session) -> None:
        """Give the lease up in the caller's transaction (that completes the work); LeaseLost,
        and the transaction rolled back by the caller, where another holds it."""
        if not session.execute(self.release_statement, self.params).rowcount:  # type: ignore[attr-defined]
            self._lost.set()
        self.check()

    def __enter__(self) -> Lease:
        self._thread = threading.Thread(target=self._keep, name="lyre-lease", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if (
            exc is not None
            and not isinstance(exc, LeaseLost)
            and self.release_statement is not None
        ):
            with self.farm.bookkeeping() as connection:
                connection.execute(self.release_statement, self.params)

    def _keep(self) -> None:
        while not self._done.wait(self.farm.settings.farm.lease_s / 4):
            try:
                self.renew()
            except LeaseLost:
                return
            except Exception as exc:  # the database away for a moment: the next beat tries
                log.warning("lease %s not renewed: %s", self.params, exc)

    def _now(self) -> dict[str, Any]:
        return {**self.params, "lease": self.farm.lease(), "now": utcnow()}
