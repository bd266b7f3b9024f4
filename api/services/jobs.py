"""Job logic behind the routes.

Reads take the caller's session, keyword-only (``session=``); writes take the farm and run
their own transactions, since each must commit before it sends a message or touches storage.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from fastapi.responses import StreamingResponse
from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import (
    AudioNotReady,
    ChapterNotFound,
    ChunkNotFound,
    FilesExpired,
    IdempotencyConflict,
    InvalidInput,
    JobNotCancellable,
    JobNotFound,
    JobNotRedoable,
    LimitReached,
    refusals,
)
from api.schemas import ChapterRedo, ChunkRedo, JobCreate, JobOut, PreviewLine, PreviewOut
from shared.farm import redo as redo_errors
from shared.farm.checked import chunk_wav
from shared.farm.context import FarmContext
from shared.farm.intake import Submission, enter_job, take_in
from shared.farm.jobs import cancel_job, job_json, output_url
from shared.farm.library import folder_name, shelf_title, zip_pieces
from shared.farm.limits import DailyLimitReached, limits_for
from shared.farm.outputs import chapter_progress
from shared.farm.redo import redo_chapter, redo_chunk
from shared.farm.retention import ChunksExpired, remove_job
from shared.farm.states import ChunkStatus
from shared.infra.models import Chunk, Job, Tenant

# --- writes ---------------------------------------------------------------------------------


def request_hash(body: JobCreate, data: bytes) -> str:
    digest = hashlib.sha256(body.model_dump_json().encode())
    digest.update(data)
    return digest.hexdigest()


def submit(
    farm: FarmContext,
    tenant: Tenant,
    body: JobCreate,
    idempotency_key: str | None,
    data: bytes | None = None,
    filename: str | None = None,
    *,
    interactive: bool = False,
) -> Job:
    """Read the input (``shared.farm.intake``), create the job, its chapters and chunks for
    the dispatcher. An Idempotency-Key seen before returns the earlier job. Nothing is stored
    for an input that is refused. ``data`` is an uploaded file's bytes, named ``filename``;
    else the body's text is the input. ``interactive``: someone waits on the job (a speech
    request): its chunks go ahead of books', and its first chunks are short."""
    data = body.text.encode() if data is None else data
    digest = request_hash(body, data)
    earlier = _earlier_job(farm, tenant, idempotency_key, digest)
    if earlier is not None:
        return earlier
    asked = submission(body, data, filename, interactive)
    with refusals():
        taken = take_in(farm.settings, asked, tenant.lexicon)
    job_id = uuid.uuid4()
    request = replace(taken.for_job(job_id), idempotency_key=idempotency_key, request_hash=digest)
    per_day = limits_for(tenant, farm.settings.limits).chars_per_day
    try:
        return enter_job(farm, tenant.id, job_id, taken, request, chars_per_day=per_day)
    except DailyLimitReached as exc:
        raise LimitReached(str(exc), exc.retry_after_s) from None
    except IntegrityError:  # the same Idempotency-Key, submitted concurrently
        earlier = _earlier_job(farm, tenant, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier


def preview(
    farm: FarmContext, tenant: Tenant, body: JobCreate, data: bytes | None, filename: str | None
) -> PreviewOut:
    """What ``submit`` would have the engine say, chunk by chunk, through the same intake and
    the tenant's lexicon; nothing is stored and nothing is counted."""
    data = body.text.encode() if data is None else data
    with refusals():
        taken = take_in(farm.settings, submission(body, data, filename), tenant.lexicon)
    request = taken.request
    return PreviewOut(
        engine=request.engine,
        title=request.title,
        author=request.author,
        chapters=taken.chunked.chapters,
        chunks=[
            PreviewLine(
                chunk=line.index,
                chapter=line.chapter + 1,
                chapter_title=line.chapter_title,
                voice=line.voice,
                said=line.said,
                written=line.written,
                pause_s=line.pause_s,
                rate=line.rate,
                marks=list(line.marks),
            )
            for line in taken.preview()
        ],
        warnings=taken.warnings,
    )


def submission(
    body: JobCreate, data: bytes, filename: str | None, interactive: bool = False
) -> Submission:
    """The API's request as the intake takes it, from any client."""
    fields = body.model_dump(exclude={"text", "mastering"})  # the same names in both
    choices = body.mastering.model_dump(exclude_none=True)
    return Submission(data, filename, choices=choices, interactive=interactive, **fields)


def redo(
    farm: FarmContext, tenant: Tenant, job_id: uuid.UUID, chapter: int, body: ChapterRedo
) -> int:
    with _redo_refusals(farm, tenant, job_id) as per_day:
        return redo_chapter(farm, job_id, chapter, body.text, body.voice, per_day)


def redo_one_chunk(
    farm: FarmContext, tenant: Tenant, job_id: uuid.UUID, index: int, body: ChunkRedo
) -> int:
    with _redo_refusals(farm, tenant, job_id) as per_day:
        return redo_chunk(farm, job_id, index, body.text, body.voice, per_day)


@contextmanager
def _redo_refusals(farm: FarmContext, tenant: Tenant, job_id: uuid.UUID) -> Iterator[int]:
    """A redo of the tenant's job (404 if it is none of theirs), given the characters it may
    still use today, its refusals as the API's problems."""
    with farm.sessions() as session:
        get_job(tenant, job_id, session=session)
    try:
        with refusals():
            yield limits_for(tenant, farm.settings.limits).chars_per_day
    except DailyLimitReached as exc:
        raise LimitReached(str(exc), exc.retry_after_s) from None
    except redo_errors.ChapterNotFound:
        raise ChapterNotFound() from None
    except redo_errors.ChunkNotFound:
        raise ChunkNotFound() from None
    except redo_errors.TextTooLong as exc:
        raise InvalidInput(str(exc)) from None
    except redo_errors.JobNotRedoable:
        raise JobNotRedoable() from None
    except ChunksExpired:
        raise FilesExpired(ChunksExpired.__doc__) from None


def _earlier_job(farm: FarmContext, tenant: Tenant, key: str | None, digest: str) -> Job | None:
    """The job an Idempotency-Key already made; 409 if it was made from another body."""
    if not key:
        return None
    with farm.sessions() as session:
        earlier = session.scalar(
            select(Job).where(Job.tenant_id == tenant.id, Job.idempotency_key == key)
        )
    if earlier is not None and earlier.request_hash != digest:
        raise IdempotencyConflict()
    return earlier


def cancel(farm: FarmContext, tenant: Tenant, job_id: uuid.UUID) -> None:
    with farm.sessions() as session:
        get_job(tenant, job_id, session=session)
    if not cancel_job(farm, job_id):
        raise JobNotCancellable()


def delete_job(farm: FarmContext, tenant: Tenant, job_id: uuid.UUID) -> int:
    """Cancel if still active, then remove the job's rows and every object of it."""
    with farm.sessions() as session:
        get_job(tenant, job_id, session=session)
    return remove_job(farm, job_id)


# --- reads ----------------------------------------------------------------------------------


def get_job(tenant: Tenant, job_id: uuid.UUID, *, session: Session) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant.id:
        raise JobNotFound()
    return job


def job_out(farm: FarmContext, job: Job, session: Session | None = None) -> JobOut:
    return jobs_out(farm, [job], session)[0]


def jobs_out(farm: FarmContext, found: list[Job], session: Session | None = None) -> list[JobOut]:
    """The jobs as the API returns them, their chapters' progress read in one query."""
    if session is None:
        with farm.sessions() as own:
            return jobs_out(farm, found, own)
    progress = chapter_progress(farm, session, [job.id for job in found])
    return [JobOut.model_validate(job_json(farm, job, progress[job.id])) for job in found]


def audio_url(farm: FarmContext, job: Job) -> str:
    check_files(job)
    return output_url(farm, job)  # the programme of the current outputs


def library_zip(farm: FarmContext, tenant: Tenant, job_id: uuid.UUID) -> StreamingResponse:
    """The job's files as a library's folder, a zip streamed from the object store."""
    with farm.sessions() as session:
        job = get_job(tenant, job_id, session=session)
        check_files(job)
        session.expunge(job)
    name = quote(folder_name(shelf_title(job), "Untitled"))
    return StreamingResponse(
        zip_pieces(farm, job),
        media_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{name}.zip"},
    )


def check_files(job: Job) -> None:
    """Refuse a job whose files are gone, or not made yet."""
    if job.expired_at:
        raise FilesExpired(f"the job's files were removed on {job.expired_at:%Y-%m-%d}")
    if not job.outputs:  # a job being redone still has its previous version's files
        raise AudioNotReady(f"the job is {job.status}; audio exists once it has succeeded")


# A page's end as the API hands it out: the last job's created_at in microseconds since the
# epoch, and its id. Any string of this shape is a position in the list (none is refused).
CURSOR_PATTERN = r"^[0-9]{1,16}-[0-9a-f]{32}$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    return f"{(created_at - _EPOCH) // _MICROSECOND}-{job_id.hex}"


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The position ``cursor`` names; the route has checked it against CURSOR_PATTERN."""
    micros, job_id = cursor.split("-")
    return _EPOCH + int(micros) * _MICROSECOND, uuid.UUID(hex=job_id)


def list_jobs(
    tenant: Tenant, status: str | None, limit: int, cursor: str | None, *, session: Session
) -> tuple[list[Job], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Job).where(Job.tenant_id == tenant.id)
    if status:
        query = query.where(Job.status == status)
    if cursor:
        created, job_id = _decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created, (Job.created_at == created) & (Job.id < job_id))
        )
    jobs = list(
        session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))
    )
    if len(jobs) <= limit:
        return jobs, None
    last = jobs[limit - 1]
    return jobs[:limit], _encode_cursor(last.created_at, last.id)


def chunk_audio(farm: FarmContext, tenant: Tenant, job_id: uuid.UUID, index: int) -> bytes:
    """One chunk's audio as WAV, as the stitch joins it: to listen to a suspect one."""
    with farm.sessions() as session:
        job = get_job(tenant, job_id, session=session)
        chunk = session.get(Chunk, (job_id, index))
        if chunk is None:
            raise ChunkNotFound()
        if job.chunks_expired_at is not None:
            raise FilesExpired(ChunksExpired.__doc__)
        if chunk.status != ChunkStatus.DONE:
            raise AudioNotReady("the chunk is not made yet")
    return chunk_wav(farm.store, str(job_id), index)
