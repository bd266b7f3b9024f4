"""The dispatcher: Postgres decides which chunks the GPUs make next; the gpu queue in Redis
carries only a bounded window of them.

Putting every chunk of a job on the queue when it is accepted makes the farm first-in
first-out: a page waits behind a 10-hour book, and two tenants' books run one after the other.
Instead the chunks wait in Postgres, and each tick of the dispatcher (:func:`dispatch`), in one
transaction that one dispatcher at a time holds (an advisory lock: a second one running by
mistake waits for its turn and changes nothing):

1. sizes the window: the slots of the live gpu workers (``gpu_worker``, which each worker
   refreshes) times ``dispatch.window_per_slot``; in it are the chunks sent and not yet
   generated, on the queue or in an engine;
2. admits each tenant's jobs (all its running ones, and queued ones up to its limit of jobs
   running at once) and reads their next chunks, in the tenant's order, locked
   (``FOR UPDATE SKIP LOCKED``);
3. lets :func:`plan`, the policy, pick the chunks that fill the room;
4. marks them sent (a compare-and-set on ``sent_at IS NULL``), starts their queued jobs, and
   puts their messages on the queue before it commits.

A submission, a redo and every generated chunk wake the dispatcher (``NOTIFY``, sent when
their transaction commits); it also ticks every ``dispatch.every_s``. Books submitted together
start together (:func:`_gathering`). A chunk sent and lost (a worker killed with it, Redis
flushed) comes back to Postgres with its lease (the reconciler), or at once where the broker
says it lost its messages (:func:`dispatch` asks ``Sender.window_lost``).
"""

from __future__ import annotations

import heapq
import math
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, bindparam, case, func, select, update
from sqlalchemy.orm import Session

from shared.farm.context import FarmContext
from shared.farm.gpu_workers import live_slots
from shared.farm.limits import limits_for
from shared.farm.reconcile import reconcile
from shared.farm.states import ACTIVE, ChunkStatus, JobStatus
from shared.farm.transitions import move_job
from shared.infra.models import Chunk, Job, Tenant, utcnow

LOCK = 0x4C797265  # "Lyre": the advisory lock a tick holds


# --- the policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A chunk waiting in Postgres; ``urgent`` if it goes ahead of books: its job has few
    chunks left to make (a short job), or someone is waiting on it (an interactive job: a
    speech request, a voice's sample), which counts as short however many chunks it has."""

    job_id: uuid.UUID
    index: int
    urgent: bool


@dataclass
class TenantQueue:
    """A tenant's side of a tick: its weight, its chunks in the window now, and its next
    chunks in its own order (short and interactive jobs first, then by priority, then oldest
    first; within a job, chapter by chapter, and within a chapter the longest first, but an
    interactive job's in reading order)."""

    tenant_id: uuid.UUID
    weight: float
    in_window: int
    candidates: list[Candidate] = field(default_factory=list)


def plan(room: int, queues: list[TenantQueue]) -> list[Candidate]:
    """The dispatch policy: which waiting chunks go to the GPUs now, in order.

    1. Short jobs go first: every chunk of a job with at most ``dispatch.short_job_chunks``
       left to make, or of an interactive job (``Job.interactive``: someone waits on it, such
       as a speech request), is sent, room or not (each tenant's limit of jobs running at once
       bounds them), so that a page or a spoken answer never waits behind a book.
    2. The room left goes to tenants in proportion to their weights: each next chunk to the
       tenant with the fewest chunks in the window (those just picked included) per unit of
       weight; on a tie, the tenant listed first. A continuous-batching engine gives every
       running chunk a token per step, so shares of the window are shares of the GPUs.
    3. Within a tenant, chunks in its own order (see :class:`TenantQueue`).
    """
    picks = [c for q in queues for c in q.candidates if c.urgent]
    room -= len(picks)
    heap: list[tuple[float, int, int, Iterator[Candidate]]] = []
    for order, q in enumerate(queues):
        held = q.in_window + sum(c.urgent for c in q.candidates)
        rest = iter([c for c in q.candidates if not c.urgent])
        heap.append((held / q.weight, order, held, rest))
    heapq.heapify(heap)
    while room > 0 and heap:
        _, order, held, rest = heapq.heappop(heap)
        chunk = next(rest, None)
        if chunk is None:
            continue  # this tenant has nothing more to send
        picks.append(chunk)
        room -= 1
        heapq.heappush(heap, ((held + 1) / queues[order].weight, order, held + 1, rest))
    return picks


# --- a tick ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    """What one tick saw and did (``took_turn`` False: another dispatcher held the lock)."""

    took_turn: bool
    window: int = 0
    in_window: int = 0
    sent: int = 0
    urgent: int = 0  # of a short or an interactive job
    returned: int = 0  # chunks back from a broker that lost its messages
    again: bool = False  # chunks held for the next tick, which need not wait for new work


_SENT = (Chunk.status == ChunkStatus.PENDING.value, Chunk.sent_at.is_not(None))  # in the window
_IN_WINDOW = (
    select(Job.tenant_id, func.count())
    .join(Chunk, Chunk.job_id == Job.id)
    .where(*_SENT, Job.status.in_(ACTIVE))
    .group_by(Job.tenant_id)
)


def _pending(*where: Any) -> Any:
    """The job's pending chunks (those ``where`` says), counted: a subquery of _ACTIVE_JOBS."""
    pending = (Chunk.job_id == Job.id, Chunk.status == ChunkStatus.PENDING.value)
    return select(func.count()).where(*pending, *where).scalar_subquery()


_ACTIVE_JOBS = (
    select(
        # chunks left to make, by its counters (generated ones too): no count of rows a tick
        *(Job.id, Job.tenant_id, Job.status, (Job.chunks_total - Job.chunks_done).label("pending")),
        *(Job.created_at, Job.interactive),
        # an interactive job's chunks in the window (counted for those alone)
        case((Job.interactive, _pending(*_SENT)), else_=0).label("sent"),
    )
    .where(Job.status.in_(ACTIVE))
    .order_by(Job.priority.desc(), Job.created_at, Job.id)
)
_NEXT_CHUNKS = (
    select(Chunk.index)
    .where(
        Chunk.job_id == bindparam("job"),
        Chunk.status == ChunkStatus.PENDING.value,
        Chunk.sent_at.is_(None),
    )
    # chapter by chapter; within one, longest first: a chapter is done when its longest chunk
    # is, and the engine's batch then drains evenly instead of waiting on one started last.
    # An interactive job's in reading order (by_length 0): its listener hears the first first
    .order_by(Chunk.chapter, (func.length(Chunk.text) * bindparam("by_length")).desc(), Chunk.index)
    .limit(bindparam("n"))
    .with_for_update(skip_locked=True)
)
MARK_SENT = (
    update(Chunk)
    .where(
        Chunk.job_id == bindparam("job"),
        Chunk.index == bindparam("idx"),
        Chunk.status == ChunkStatus.PENDING.value,
        Chunk.sent_at.is_(None),
    )
    .values(sent_at=bindparam("at"), taken_at=None, lease_until=bindparam("lease"))
)


def dispatch(farm: FarmContext, slots: int | None = None) -> Tick:
    """One tick: fill the window from Postgres by :func:`plan`. The messages are sent before
    the transaction commits, so that a failed send leaves the chunks waiting in Postgres.

    ``slots`` replaces the live gpu workers' (embedded mode, tests), and books then start at
    once; the farm's dispatcher gathers them (``dispatch.gather_s``, see :func:`_gathering`)."""
    returned = 0
    if farm.send.window_lost():
        returned = reconcile(farm, lost=True)["returned"]
    settings = farm.settings.dispatch
    with farm.sessions() as session:
        if session.get_bind().dialect.name == "postgresql" and not session.scalar(
            select(func.pg_try_advisory_xact_lock(LOCK))
        ):
            return Tick(took_turn=False)
        gather_s = settings.gather_s if slots is None else 0.0
        if slots is None:
            slots = live_slots(session, settings.heartbeat_s)
        window = math.ceil(slots * settings.window_per_slot)
        held = dict(session.execute(_IN_WINDOW).all())
        room = window - sum(held.values())
        queues, starting, again = _queues(farm, session, held, room, gather_s)
        picks = plan(room, queues)
        now, lease = utcnow(), farm.lease()
        if picks:
            rows = [{"job": c.job_id, "idx": c.index, "at": now, "lease": lease} for c in picks]
            session.connection().execute(MARK_SENT, rows)  # Core: an executemany
        for job_id in starting & {c.job_id for c in picks}:
            move_job(session, job_id, JobStatus.RUNNING)
        for chunk in picks:
            farm.send.generate(chunk.job_id, chunk.index, urgent=chunk.urgent)
    return Tick(
        took_turn=True,
        window=window,
        in_window=sum(held.values()) + len(picks),
        sent=len(picks),
        urgent=sum(c.urgent for c in picks),
        returned=returned,
        again=again,
    )


def _queues(
    farm: FarmContext, session: Session, held: dict[uuid.UUID, int], room: int, gather_s: float
) -> tuple[list[TenantQueue], set[uuid.UUID], bool]:
    """Each tenant with work waiting, its admitted jobs' next chunks (at most ``room`` of its
    book chunks, all of its short and interactive jobs'), the queued jobs among them, and
    whether chunks wait for the next tick (an interactive job's first goes alone)."""
    settings = farm.settings.dispatch
    short_at = settings.short_job_chunks
    rows = session.execute(_ACTIVE_JOBS).all()
    gathering = _gathering(rows, short_at, gather_s)
    jobs: dict[uuid.UUID, list[_Waiting]] = defaultdict(list)
    for job_id, tenant_id, status, pending, _, interactive, sent in rows:
        if job_id not in gathering:
            urgent = interactive or pending <= short_at
            jobs[tenant_id].append(_Waiting(job_id, status, pending, urgent, interactive, sent))
    tenants = {t.id: t for t in session.scalars(select(Tenant).where(Tenant.id.in_(list(jobs))))}
    queues, starting, again = [], set(), False
    for tenant_id, its_jobs in jobs.items():
        tenant = tenants[tenant_id]
        limit = limits_for(tenant, farm.settings.limits).running_jobs
        admitted = _admitted(its_jobs, limit)
        starting |= {job.id for job in admitted if job.status == JobStatus.QUEUED}
        queue = TenantQueue(tenant_id, max(tenant.weight, 1e-6), held.get(tenant_id, 0))
        books = 0
        for job in admitted:
            want = job.pending if job.urgent else room - books
            if job.interactive:  # heard in order: a few ahead keep up, and leave seats free;
                # its first alone (four at once reached the engine ≈ 20 ms later), the next later
                first = job.status == JobStatus.QUEUED
                again |= first and job.pending > 1
                want = min(want, (1 if first else settings.interactive_ahead) - job.sent)
            if want <= 0:
                continue
            order = {"by_length": int(not job.interactive)}
            found = session.scalars(_NEXT_CHUNKS, {"job": job.id, "n": want, **order}).all()
            queue.candidates += [Candidate(job.id, index, job.urgent) for index in found]
            books += 0 if job.urgent else len(found)
        if queue.candidates:
            queues.append(queue)
    return queues, starting, again  # tenants in the order of their first job: priority, age


@dataclass(frozen=True)
class _Waiting:
    """An active job as a tick sees it; ``urgent``: short, or interactive."""

    id: uuid.UUID
    status: str
    pending: int  # chunks left to make
    urgent: bool
    interactive: bool = False
    sent: int = 0  # an interactive job's chunks in the window


def _gathering(rows: Sequence[Row[Any]], short_at: int, gather_s: float) -> set[uuid.UUID]:
    """Books that wait a moment before they start, so that books submitted together start
    together: a continuous-batching engine does not preempt, so a book that takes every slot
    alone keeps them for a chunk's time (tens of seconds) after another tenant's book arrives.
    While books keep arriving less than ``gather_s`` apart, the queued ones wait, at most
    ``4 * gather_s`` each; short and interactive jobs never wait."""
    now, wait = utcnow(), timedelta(seconds=gather_s)
    books = [
        row
        for row in rows
        if row.status == JobStatus.QUEUED and row.pending > short_at and not row.interactive
    ]
    if not gather_s or not books or now - max(book.created_at for book in books) >= wait:
        return set()
    return {book.id for book in books if now - book.created_at < 4 * wait}


def _admitted(jobs: list[_Waiting], limit: int) -> list[_Waiting]:
    """A tenant's jobs that may send chunks, in its order: every running one, and queued ones
    while fewer than ``limit`` run (0: no limit); short and interactive jobs first, then as
    listed (priority, then age)."""
    running = sum(job.status != JobStatus.QUEUED for job in jobs)
    allowed = max(0, limit - running) if limit else len(jobs)
    starting = [job.id for job in jobs if job.status == JobStatus.QUEUED][:allowed]
    admitted = [job for job in jobs if job.status != JobStatus.QUEUED or job.id in starting]
    return sorted(admitted, key=lambda job: not job.urgent)  # stable: priority, then age
