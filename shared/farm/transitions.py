"""Every compare-and-set statement of the farm, each named after the edge it takes.

A state change is one ``UPDATE … WHERE status IN (the edge's sources)`` on ids alone: zero rows
means that another worker moved the row first, and the caller stops there. The names say the
edge (``CHUNK_PENDING_TO_GENERATED``); ``tests/unit/test_transitions.py`` checks each one against
the tables in ``shared.farm.states``. The migration's triggers write a ``job_event`` row for every
change of a job's or a chunk's status, in the statement that makes it, so that no transition can
forget its event.

Leases are the other kind of statement here: ``CLAIM_*`` extend a row's deadline without
changing its state, and the reconciler's ``RESEND_*`` (``shared.farm.reconcile``) re-send
whatever is past its deadline (the stitches' claims, with their holders, are
``shared.farm.leases``).

The statements are built once, at import, and bound by name (``job``, ``idx``, ``lease`` …):
building and ORM-executing an UPDATE costs more CPU than the database spends on it.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, case, exists, func, literal_column, or_, select, update
from sqlalchemy.orm import Session, aliased

from shared.farm.states import ACTIVE, FINAL, WAITING, ChapterStatus, ChunkStatus, JobStatus
from shared.farm.usage import bill_job
from shared.infra.models import Chapter, Chunk, Job, utcnow

# --- jobs -----------------------------------------------------------------------------------


def _job_edge(to: JobStatus, *sources: JobStatus) -> Any:
    return (
        update(Job)
        .where(Job.id == bindparam("job"), Job.status.in_(sources))
        .values(status=to.value)
    )


JOB_QUEUED_TO_RUNNING = _job_edge(JobStatus.RUNNING, JobStatus.QUEUED)
JOB_SUCCEEDED_TO_RUNNING = _job_edge(JobStatus.RUNNING, JobStatus.SUCCEEDED)  # a chapter redone
JOB_RUNNING_TO_SUCCEEDED = _job_edge(JobStatus.SUCCEEDED, JobStatus.RUNNING)
JOB_ACTIVE_TO_FAILED = _job_edge(JobStatus.FAILED, *ACTIVE)
JOB_ACTIVE_TO_CANCELLED = _job_edge(JobStatus.CANCELLED, *ACTIVE)
JOB_EDGES = {
    JobStatus.RUNNING: JOB_QUEUED_TO_RUNNING,  # JOB_SUCCEEDED_TO_RUNNING: a redo's own
    JobStatus.SUCCEEDED: JOB_RUNNING_TO_SUCCEEDED,
    JobStatus.FAILED: JOB_ACTIVE_TO_FAILED,
    JobStatus.CANCELLED: JOB_ACTIVE_TO_CANCELLED,
}


def move_job(session: Session, job_id: uuid.UUID, to: JobStatus, **values: Any) -> bool:
    """Move a job to ``to`` by its edge, setting ``values`` too; False if it was not in one of
    the edge's sources (someone else moved it). A job that ends gives its costs to its
    tenant's usage (``shared.farm.usage``)."""
    if to is JobStatus.RUNNING:
        values.setdefault("started_at", utcnow())
    if to in FINAL:
        values.setdefault("finished_at", utcnow())
    result = session.execute(JOB_EDGES[to].values(**values), {"job": job_id})
    moved = bool(result.rowcount)  # type: ignore[attr-defined]
    if moved and to in FINAL:
        bill_job(session, job_id)
    return moved


# --- chunks ---------------------------------------------------------------------------------

_JOB_STATUS, _JOB_SEED, _JOB_INTERACTIVE = (  # a claimed chunk's job's, as "job_status" …
    select(c).where(Job.id == Chunk.job_id).scalar_subquery().label(f"job_{c.key}")
    for c in (Job.status, Job.seed, Job.interactive)
)
# Of the job named by the ``job`` parameter, not of each row: Postgres checks it once (an
# InitPlan). Asked of the row's job, as a subquery per candidate row, its cost made the planner
# narrow the primary key's row down by ``status`` first, on the status index: a scan of every
# pending chunk's entry, dead ones too, 2-4 ms a claim behind a backlog of 40,000 (bench/scale.py).
# Written into the SQL: an IN list of bound values is re-rendered at every execution.
_JOB_IS_ACTIVE = exists().where(
    Job.id == bindparam("job"), Job.status.in_([literal_column(f"'{s}'") for s in ACTIVE])
)
_THIS_CHUNK = (Chunk.job_id == bindparam("job"), Chunk.index == bindparam("idx"))


def _claim(status: ChunkStatus, *columns: Any, **values: Any) -> Any:
    """Take a chunk in ``status`` of an active job, extending its lease and counting the attempt;
    return the job's status and seed and ``columns``. Not exclusive: the first to move it wins."""
    return (
        update(Chunk)
        .where(*_THIS_CHUNK, Chunk.status == status, _JOB_IS_ACTIVE)
        .values(lease_until=bindparam("lease"), attempts=Chunk.attempts + 1, **values)
        .returning(_JOB_STATUS, _JOB_SEED, *columns)
    )


# A gpu worker took the chunk off the queue: it is in an engine now. A chunk taken from a
# message the dispatcher no longer counts (its lease ran out while it waited on the queue)
# counts in the window again, and is not sent a second time.
CLAIM_PENDING_CHUNK = _claim(
    ChunkStatus.PENDING,
    _JOB_INTERACTIVE,  # someone listens as it is made (shared.farm.live)
    *(Chunk.text, Chunk.voice, Chunk.take, Chunk.takes),
    Chunk.taken_at,  # the worker's hold on it (shared.farm.leases)
    taken_at=bindparam("at"),
    sent_at=func.coalesce(Chunk.sent_at, bindparam("at")),
)
_TAKES = (Chunk.take, Chunk.takes, Chunk.suspect)  # shared.checks's
_COSTS = (Chunk.engine_s, Chunk.decode_cpu_s)  # so far, since it was last made
CLAIM_GENERATED_CHUNK = _claim(
    ChunkStatus.GENERATED, Chunk.speech, Chunk.rate, Chunk.text, *_TAKES, *_COSTS
)

BACK_TO_THE_DISPATCHER = {"sent_at": None, "taken_at": None, "lease_until": None}


def _chunk_edge(source: ChunkStatus, to: ChunkStatus, **values: Any) -> Any:
    return (
        update(Chunk).where(*_THIS_CHUNK, Chunk.status == source).values(status=to.value, **values)
    )


# The end of generation: the engine's output goes into the row with the state change.
CHUNK_PENDING_TO_GENERATED = _chunk_edge(
    ChunkStatus.PENDING,
    ChunkStatus.GENERATED,
    speech=bindparam("output"),
    dropped_tokens=bindparam("n_dropped"),
    generate_s=bindparam("seconds"),
    engine_s=func.coalesce(Chunk.engine_s, 0) + bindparam("engine_share"),  # the takes refused too
    lease_until=bindparam("lease"),
    **{name: bindparam(name) for name in ("take", "takes", "suspect")},  # shared.checks's
)

# A take that failed a check at decode, with takes left: back to the dispatcher for the next.
_NEXT_TAKE: dict[str, Any] = {
    "take": bindparam("take"),
    "takes": bindparam("takes"),
    **BACK_TO_THE_DISPATCHER,
}
CHUNK_GENERATED_TO_PENDING = _chunk_edge(
    ChunkStatus.GENERATED,
    ChunkStatus.PENDING,
    speech=None,
    decode_cpu_s=bindparam("cpu"),
    **_NEXT_TAKE,
)

# The end of a decode: the chunk is done, and counted on its job. Exactly one decode of a job
# sees chunks_done reach chunks_total; that one sets the stitch's lease and sends the stitch.
CHUNK_GENERATED_TO_DONE = _chunk_edge(
    ChunkStatus.GENERATED,
    ChunkStatus.DONE,
    samples=bindparam("n"),
    true_peak=bindparam("peak"),
    energy=bindparam("energy"),
    loudness_steps=bindparam("steps"),
    done_at=bindparam("at"),
    decode_s=bindparam("seconds"),
    decode_cpu_s=bindparam("cpu"),
    takes=bindparam("takes"),
    suspect=bindparam("suspect"),
    lease_until=None,
    speech=None,  # decoded: the row keeps only what the stitch needs
)
# One chunk of a finished job made again (shared.farm.redo): its next take, of its text or a
# corrected one; its audio is overwritten when the new take is decoded.
_AS_SAID: dict[str, Any] = {name: bindparam(name) for name in ("text", "caption", "voice", "marks")}
CHUNK_DONE_TO_PENDING = _chunk_edge(
    ChunkStatus.DONE,
    ChunkStatus.PENDING,
    suspect=None,
    done_at=None,
    engine_s=None,  # its costs so far are counted on its chapter and job
    decode_cpu_s=None,
    **_AS_SAID,
    **_NEXT_TAKE,
)


def _stitched(table: type[Job] | type[Chapter]) -> dict[str, Any]:
    """A stitch's costs added to its chapter's or job's."""
    return {
        "stitch_cpu_s": table.stitch_cpu_s + bindparam("stitch_cpu"),
        "encode_cpu_s": table.encode_cpu_s + bindparam("encode_cpu"),
        "stored_bytes": table.stored_bytes + bindparam("stored"),
    }


def _counted(table: type[Job] | type[Chapter]) -> dict[str, Any]:
    """A finished chunk's costs added to its job's or chapter's (``shared.infra.costs``)."""
    return {
        "engine_s": table.engine_s + bindparam("engine_share"),
        "decode_cpu_s": table.decode_cpu_s + bindparam("cpu"),
        "stored_bytes": table.stored_bytes + bindparam("bytes"),
    }


_LAST = Job.chunks_done + 1 == Job.chunks_total
COUNT_DONE_CHUNK = (
    update(Job)
    .where(Job.id == bindparam("job"), Job.status == JobStatus.RUNNING)
    .values(
        chunks_done=Job.chunks_done + 1,
        audio_samples=Job.audio_samples + bindparam("n"),
        **_counted(Job),
        stitch_lease_until=case((_LAST, bindparam("lease")), else_=Job.stitch_lease_until),
    )
    .returning((Job.chunks_done == Job.chunks_total).label("last"))
)
# ... and on its chapter, whose poll reads the count rather than counting its chunk rows.
_ITS_CHAPTER = select(Chunk.chapter).where(*_THIS_CHUNK).scalar_subquery()
COUNT_DONE_IN_CHAPTER = (
    update(Chapter)
    .where(Chapter.job_id == bindparam("job"), Chapter.index == _ITS_CHAPTER)
    .values(chunks_done=Chapter.chunks_done + 1, **_counted(Chapter))
)

# A cancelled job's waiting chunks: none of them is generated or decoded any more.
CHUNK_WAITING_TO_CANCELLED = (
    update(Chunk)
    .where(Chunk.job_id == bindparam("job"), Chunk.status.in_(WAITING))
    .values(status=ChunkStatus.CANCELLED.value, lease_until=None)
)

# --- chapters ---------------------------------------------------------------------------------

_OTHER = aliased(Chunk)
_THIS_CHAPTER = (Chapter.job_id == bindparam("job"), Chapter.index == bindparam("chapter"))
ITS_CHUNKS_DONE = ~exists().where(
    _OTHER.job_id == Chapter.job_id,
    _OTHER.chapter == Chapter.index,
    _OTHER.status != ChunkStatus.DONE.value,
)
CHAPTER_JOB_ACTIVE = (
    select(Job.status).where(Job.id == Chapter.job_id).scalar_subquery().in_(ACTIVE)
)

# After a decode's commit: lease the chunk's chapter for its stitch if every chunk of it is done
# and no decode has yet. Of two at once, one gets the row: the other waits on its lock, then
# finds the lease set (READ COMMITTED re-checks the conditions on the updated row).
LEASE_COMPLETE_CHAPTER = (
    update(Chapter)
    .where(
        Chapter.job_id == bindparam("job"),
        Chapter.index == _ITS_CHAPTER,
        Chapter.status == ChapterStatus.WAITING,
        or_(Chapter.lease_until.is_(None), Chapter.lease_until < bindparam("at")),
        ITS_CHUNKS_DONE,
    )
    .values(lease_until=bindparam("lease"))
    .returning(Chapter.index)
)

# Made for the version it was claimed for: a stitch overtaken by a redo changes nothing.
CHAPTER_WAITING_TO_DONE = (
    update(Chapter)
    .where(
        *_THIS_CHAPTER,
        Chapter.status == ChapterStatus.WAITING,
        Chapter.version == bindparam("made_for"),
    )
    .values(
        status=ChapterStatus.DONE.value,
        output_key=bindparam("key"),
        samples=bindparam("n"),
        report=bindparam("report"),
        checks=bindparam("checks"),
        done_at=bindparam("at"),
        lease_until=None,
        **_stitched(Chapter),
    )
)
# ... and on its job, as the book's stitch is when the job succeeds (shared.farm.book_stitch).
COUNT_STITCH = update(Job).where(Job.id == bindparam("job")).values(**_stitched(Job))
CHAPTER_DONE_TO_WAITING = (
    update(Chapter)
    .where(*_THIS_CHAPTER, Chapter.status == ChapterStatus.DONE)
    .values(
        status=ChapterStatus.WAITING.value,
        version=bindparam("new_version"),
        title=bindparam("new_title"),
        lease_until=None,  # its new chunks' last decode leases it for the stitch
    )
)
ALL_CHAPTERS_DONE = ~exists().where(
    Chapter.job_id == Job.id, Chapter.status != ChapterStatus.DONE.value
)
