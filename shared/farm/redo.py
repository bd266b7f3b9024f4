"""Redoing one chapter or one chunk of a finished job: its chunks made again (from corrected text,
or the same text sampled afresh, or in another voice), its chapter's file and then the book's
files rebuilt as the next version. Every other chunk's audio and every other chapter's file are
kept as they are, and the previous version's files stay listed (and downloadable) until the new
ones are made."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, func, select

from shared.farm.context import FarmContext
from shared.farm.intake import take_in_chapter
from shared.farm.jobs import say
from shared.farm.limits import count_chars
from shared.farm.retention import ChunksExpired
from shared.farm.states import ChunkStatus, JobStatus
from shared.farm.transitions import (
    CHAPTER_DONE_TO_WAITING,
    CHUNK_DONE_TO_PENDING,
    JOB_SUCCEEDED_TO_RUNNING,
)
from shared.infra import queues
from shared.infra.db import notify_at_commit
from shared.infra.models import Chapter, Chunk, Job
from shared.infra.storage import chunk_audio_key
from shared.text.lexicon import Lexicon


class ChapterNotFound(LookupError):
    """The job has no chapter with this number."""


class ChunkNotFound(LookupError):
    """The job has no chunk with this number."""


class TextTooLong(ValueError):
    """A chunk's corrected text is more than one chunk: redo its chapter instead."""


class JobNotRedoable(RuntimeError):
    """Only a job that has succeeded can have a chapter or a chunk redone (one redo at a time)."""


def redo_chapter(
    farm: FarmContext,
    job_id: uuid.UUID,
    chapter: int,
    text: str | None = None,
    voice: str | None = None,
    chars_per_day: int = 0,
) -> int:
    """Start the job's next version with ``chapter`` made again; return that version. Its
    characters count against the tenant's ``chars_per_day`` (0: no limit). A corrected
    ``text`` the intake refuses raises its :class:`~shared.farm.intake.InputRefused`."""
    with farm.sessions() as session:
        job = session.get(Job, job_id, with_for_update=True)
        row = session.get(Chapter, (job_id, chapter))
        if job is None or row is None:
            raise ChapterNotFound()
        _check_redoable(job)
        old = list(  # in reading order: the first keeps its boundary (the chapter's pause)
            session.scalars(
                select(Chunk)
                .where(Chunk.job_id == job_id, Chunk.chapter == chapter)
                .order_by(Chunk.index)
            )
        )
        first = (
            session.scalar(select(func.max(Chunk.index)).where(Chunk.job_id == job_id)) or 0
        ) + 1
        title, new = _new_chunks(farm, job, row, old, first, text, voice)
        count_chars(session, job.tenant_id, sum(len(c.text) for c in new), chars_per_day)
        version = job.version + 1
        redo = JOB_SUCCEEDED_TO_RUNNING.values(
            version=version,
            chunks_total=job.chunks_total - len(old) + len(new),
            chunks_done=job.chunks_done - len(old),
            stitch_lease_until=None,
            finished_at=None,
        )
        session.execute(redo, {"job": job_id})
        session.execute(
            CHAPTER_DONE_TO_WAITING.values(chunks_total=len(new), chunks_done=0),
            {
                "job": job_id,
                "chapter": chapter,
                "new_version": version,
                "new_title": title,
            },
        )
        session.execute(delete(Chunk).where(Chunk.job_id == job_id, Chunk.chapter == chapter))
        session.add_all(new)
        notify_at_commit(session, queues.DISPATCH_CHANNEL)  # the new chunks, for the dispatcher
    # the previous version's files are made; the chunks they were made from are not needed
    farm.store.delete_keys([chunk_audio_key(str(job_id), c.index) for c in old])
    return version


def redo_chunk(
    farm: FarmContext,
    job_id: uuid.UUID,
    index: int,
    text: str | None = None,
    voice: str | None = None,
    chars_per_day: int = 0,
) -> int:
    """Start the job's next version with chunk ``index`` made again (its next take: the same
    words are sampled afresh, a seeded job's alike on every rerun), then its chapter's file and
    the book's; return that version. A corrected ``text`` must make one chunk."""
    with farm.sessions() as session:
        job = session.get(Job, job_id, with_for_update=True)
        chunk = session.get(Chunk, (job_id, index))
        if job is None or chunk is None:
            raise ChunkNotFound()
        _check_redoable(job)
        said, shown, marks = chunk.text, chunk.caption, chunk.marks
        if text is not None and text.strip() != (shown or said).strip():  # corrected
            chunked = take_in_chapter(farm.settings, text, "")
            if len(chunked.spans) != 1:
                raise TextTooLong(
                    f"the text makes {len(chunked.spans)} chunks, not one: redo its chapter"
                )
            said = say(chunked, Lexicon(job.lexicon.get("entries") or {}))[0]
            shown, marks = chunked.spans[0].text, None
        count_chars(session, job.tenant_id, len(said), chars_per_day)
        version = job.version + 1
        redo = JOB_SUCCEEDED_TO_RUNNING.values(
            version=version,
            chunks_done=job.chunks_done - 1,
            stitch_lease_until=None,
            finished_at=None,
        )
        session.execute(redo, {"job": job_id})
        title = session.get(Chapter, (job_id, chunk.chapter)).title  # type: ignore[union-attr]
        session.execute(
            CHAPTER_DONE_TO_WAITING.values(chunks_done=Chapter.chunks_done - 1),
            {"job": job_id, "chapter": chunk.chapter, "new_version": version, "new_title": title},
        )
        again = {
            "job": job_id,
            "idx": index,
            "text": said,
            "caption": shown if shown != said else None,
            "voice": voice or chunk.voice,
            "marks": marks,
            "take": chunk.take + 1,
            "takes": None,
        }
        session.execute(CHUNK_DONE_TO_PENDING, again)
        notify_at_commit(session, queues.DISPATCH_CHANNEL)
    return version


def _check_redoable(job: Job) -> None:
    """A job is redone once it has succeeded, one redo at a time, while its chunks' audio (which
    its files are rebuilt from) is kept."""
    if job.status != JobStatus.SUCCEEDED:
        raise JobNotRedoable()
    if job.chunks_expired_at is not None:
        raise ChunksExpired()


def _new_chunks(
    farm: FarmContext,
    job: Job,
    chapter: Chapter,
    old: list[Chunk],
    first: int,
    text: str | None,
    voice: str | None,
) -> tuple[str, list[Chunk]]:
    """The chapter's new chunks, numbered after every chunk the job has had (a new number is
    a new seed, so the same text is sampled afresh; a seeded job's from its seed and the number,
    so the same redos of the same seeded job give the same bytes); and its title."""
    title = chapter.title
    # said, shown, voice, boundary, and what SSML asked: pause, rate, marks
    spans: list[tuple[str, str, str | None, str, float | None, float | None, Any]]
    if text is not None:
        chunked = take_in_chapter(farm.settings, text, title)
        said = say(chunked, Lexicon(job.lexicon.get("entries") or {}))
        title = chunked.chapters[0] if chunked.chapters and chunked.chapters[0] else title
        spans = [
            (spoken, s.text, s.voice, s.boundary.value, None, None, None)
            for s, spoken in zip(chunked.spans, said, strict=True)
        ]
    else:  # the same words again: the same pauses, rates and marks
        spans = [
            (c.text, c.caption or c.text, c.voice, c.boundary, c.pause_s, c.rate, c.marks)
            for c in old
        ]
    return title, [
        Chunk(
            job_id=job.id,
            index=first + i,
            status=ChunkStatus.PENDING,
            text=said,
            caption=shown if shown != said else None,
            voice=voice or own_voice or job.voice,
            boundary=boundary if i else (old[0].boundary if old else boundary),
            chapter=chapter.index,
            pause_s=pause_s,
            rate=rate,
            marks=marks,
            attempts=0,
        )
        for i, (said, shown, own_voice, boundary, pause_s, rate, marks) in enumerate(spans)
    ]
