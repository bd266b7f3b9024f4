"""Job logic behind the routes.

Reads take the caller's session, keyword-only (``session=``); writes take the farm and run
their own transactions, since each must commit before it sends a message or touches storage.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.errors import (
    AudioNotReady,
    ChapterNotFound,
    FilesExpired,
    IdempotencyConflict,
    InputTooLarge,
    InvalidInput,
    JobNotCancellable,
    JobNotFound,
    JobNotRedoable,
    LimitReached,
)
from api.schemas import ChapterRedo, JobCreate, JobOut, LimitsOut
from shared.audio.presets import mastering
from shared.farm import redo as redo_errors
from shared.farm.context import Farm
from shared.farm.jobs import (
    JobRequest,
    cancel_job,
    job_json,
    new_job,
    output_url,
    submit_job,
    with_credits,
)
from shared.farm.limits import DailyLimitReached, limits_for
from shared.farm.outputs import chapter_progress
from shared.farm.redo import redo_chapter
from shared.farm.retention import ChunksExpired, periods, remove_job
from shared.infra.models import Job, Tenant, TenantUsage, utcnow
from shared.infra.storage import cover_key
from shared.speech.factory import resolve_engine_name
from shared.text.chunking import chunk_text
from shared.text.documents import Document, read_document
from shared.text.epub import BookRefused
from shared.text.lexicon import LexiconRefused
from shared.text.lexicon import check as check_lexicon
from shared.text.lexicon import merge as merge_lexicons
from shared.webhooks.urls import WebhookUrlRefused, check_webhook_url

# --- writes ---------------------------------------------------------------------------------


def request_hash(body: JobCreate, data: bytes) -> str:
    digest = hashlib.sha256(body.model_dump_json().encode())
    digest.update(data)
    return digest.hexdigest()


def submit(
    farm: Farm,
    tenant: Tenant,
    body: JobCreate,
    idempotency_key: str | None,
    data: bytes | None = None,
    filename: str | None = None,
    *,
    interactive: bool = False,
) -> Job:
    """Read the input (EPUB, HTML, Markdown or text), create the job, its chapters and chunks,
    then queue the chunks. An Idempotency-Key seen before returns the earlier job. Nothing is
    stored for an input that is refused. ``data`` is an uploaded file; else the text.
    ``interactive``: someone waits on the job (a speech request): its chunks go ahead of
    books', and its first chunks are short (``chunking.interactive_ramp_chars``)."""
    data = body.text.encode() if data is None else data
    digest = request_hash(body, data)
    earlier = _earlier_job(farm, tenant, idempotency_key, digest)
    if earlier is not None:
        return earlier
    settings = farm.settings
    document, lexicon, text = _read_input(farm, tenant, body, data, filename)
    chunking = settings.chunking
    ramp = chunking.interactive_ramp_chars if interactive else 0
    chunked = chunk_text(text, chunking.max_chars, structured=document.structured, ramp_chars=ramp)
    if not chunked.spans:
        raise InvalidInput("the input has nothing to say (no words)")
    job_id = uuid.uuid4()
    cover = document.cover
    cover_at = cover_key(str(job_id), cover.extension) if cover else None
    request = JobRequest(
        voice=body.voice,
        engine=resolve_engine_name(settings)[0],
        mastering=mastering(
            body.preset,
            settings.audio,
            {"format": body.format, **body.mastering.model_dump(exclude_none=True)},
        ),
        preset=body.preset,
        title=body.title or document.title,
        author=body.author or document.author,
        language=document.language,
        cover_key=cover_at,
        lexicon=lexicon,
        webhook_url=body.webhook_url,
        metadata=body.metadata,
        idempotency_key=idempotency_key,
        request_hash=digest,
        priority=body.priority,
        interactive=interactive,
        seed=body.seed,
    )
    job, chunks, chapters = new_job(job_id, tenant.id, chunked, request)
    per_day = limits_for(tenant, settings.limits).chars_per_day
    if cover and cover_at:
        farm.store.put_bytes(cover_at, cover.data)
    try:
        submit_job(farm, job, chunks, chapters, chars_per_day=per_day)
    except DailyLimitReached as exc:
        if cover_at:
            farm.store.delete_keys([cover_at])
        raise LimitReached(str(exc), exc.retry_after_s) from None
    except IntegrityError:  # the same Idempotency-Key, submitted concurrently
        earlier = _earlier_job(farm, tenant, idempotency_key, digest)
        if earlier is None:
            raise
        return earlier
    return job


def redo(farm: Farm, tenant: Tenant, job_id: uuid.UUID, chapter: int, body: ChapterRedo) -> int:
    with farm.sessions() as session:
        get_job(tenant, job_id, session=session)
    per_day = limits_for(tenant, farm.settings.limits).chars_per_day
    try:
        return redo_chapter(farm, job_id, chapter, body.text, body.voice, per_day)
    except DailyLimitReached as exc:
        raise LimitReached(str(exc), exc.retry_after_s) from None
    except redo_errors.ChapterNotFound:
        raise ChapterNotFound() from None
    except redo_errors.JobNotRedoable:
        raise JobNotRedoable() from None
    except ChunksExpired:
        raise FilesExpired(ChunksExpired.__doc__) from None
    except redo_errors.NothingToSay:
        raise InvalidInput("text has nothing to say (no words)") from None


def set_lexicon(farm: Farm, tenant: Tenant, entries: dict[str, str]) -> dict[str, str]:
    try:
        check_lexicon(entries)
    except LexiconRefused as exc:
        raise InvalidInput(str(exc)) from None
    with farm.sessions() as session:
        session.execute(update(Tenant).where(Tenant.id == tenant.id).values(lexicon=entries))
    return entries


def tenant_limits(farm: Farm, tenant: Tenant) -> LimitsOut:
    """The tenant's weight and limits in effect, what it has spent of today's, and how long its
    jobs' objects are kept."""
    limits = limits_for(tenant, farm.settings.limits)
    chunk_days, days = periods(tenant.retention_days, farm.settings.retention)
    with farm.sessions() as session:
        today = session.get(TenantUsage, (tenant.id, utcnow().date()))
    return LimitsOut(
        weight=tenant.weight,
        running_jobs=limits.running_jobs,
        chars_per_day=limits.chars_per_day,
        chars_today=today.chars if today else 0,
        requests_per_s=limits.requests_per_s,
        request_burst=limits.request_burst,
        retention_days=days,
        chunk_retention_days=chunk_days,
    )


def _read_input(
    farm: Farm, tenant: Tenant, body: JobCreate, data: bytes, filename: str | None
) -> tuple[Document, dict[str, str], str]:
    """Check the request and read its input: the document, the lexicon in effect, and the text
    to chunk (with any credits)."""
    if body.webhook_url:
        try:
            check_webhook_url(body.webhook_url, farm.settings.webhooks.allowlist)
        except WebhookUrlRefused as exc:
            raise InvalidInput(str(exc)) from None
    if not data.strip():
        raise InvalidInput("text is empty")
    settings = farm.settings
    try:
        document = read_document(data, settings.farm.max_unpacked_bytes, filename)
        lexicon = merge_lexicons(tenant.lexicon, body.lexicon)
    except (BookRefused, LexiconRefused) as exc:
        raise InvalidInput(str(exc)) from None
    text = with_credits(document, body.opening_credits, body.closing_credits, body.title)
    if len(text.encode()) > settings.farm.max_input_bytes:
        raise InputTooLarge(f"the text is larger than {settings.farm.max_input_bytes} bytes")
    return document, lexicon, text


def _earlier_job(farm: Farm, tenant: Tenant, key: str | None, digest: str) -> Job | None:
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


def cancel(farm: Farm, tenant: Tenant, job_id: uuid.UUID) -> None:
    with farm.sessions() as session:
        get_job(tenant, job_id, session=session)
    if not cancel_job(farm, job_id):
        raise JobNotCancellable()


def delete_job(farm: Farm, tenant: Tenant, job_id: uuid.UUID) -> int:
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


def job_out(farm: Farm, job: Job, session: Session | None = None) -> JobOut:
    return jobs_out(farm, [job], session)[0]


def jobs_out(farm: Farm, found: list[Job], session: Session | None = None) -> list[JobOut]:
    """The jobs as the API returns them, their chapters' progress read in one query."""
    if session is None:
        with farm.sessions() as own:
            return jobs_out(farm, found, own)
    progress = chapter_progress(farm, session, [job.id for job in found])
    return [JobOut.model_validate(job_json(farm, job, progress[job.id])) for job in found]


def audio_url(farm: Farm, job: Job) -> str:
    if job.expired_at:
        raise FilesExpired(f"the job's files were removed on {job.expired_at:%Y-%m-%d}")
    if not job.outputs:  # a job being redone still has its previous version's files
        raise AudioNotReady(f"the job is {job.status}; audio exists once it has succeeded")
    return output_url(farm, job)  # the programme of the current outputs


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
