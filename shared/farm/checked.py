"""The report of a job's checks (``shared.checks``), for people: per chapter, how many chunks
were checked and made again, and each chunk that is still suspect with its words, its reason and
where to hear it. A chapter's stitch writes its part (``chapter.checks``); the job's JSON, the
chapters file and the page read it back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.infra.models import Chunk
from shared.infra.storage import ObjectStore, chunk_audio_key, get_pcm

REVIEW_EVENT = "job.needs_review"  # a webhook's: the job finished with suspect chunks


def takes_made(takes: Iterable[Mapping[str, Any]]) -> int:
    """How many takes a chunk's findings (``chunk.takes``) are of: a take has one at
    generation and, if it got so far, one at decode."""
    return len({checked["take"] for checked in takes})


def chunk_wav(store: ObjectStore, job_id: str, index: int) -> bytes:
    """A chunk's stored audio as WAV, to listen to (a suspect one, before a redo)."""
    from shared.audio.encode import encode_bytes  # PyAV only where a chunk is listened to

    return encode_bytes(get_pcm(store, chunk_audio_key(job_id, index)))


def chapter_checks(session: Session, job_id: uuid.UUID, chapter: int) -> dict[str, Any] | None:
    """What the checks found of a chapter's chunks (None where none was checked: checks off)."""
    rows = session.execute(
        select(Chunk.index, Chunk.takes, Chunk.suspect, func.coalesce(Chunk.caption, Chunk.text))
        .where(Chunk.job_id == job_id, Chunk.chapter == chapter)
        .order_by(Chunk.index)
    ).all()
    checked = [row for row in rows if row.takes]
    if not checked:
        return None
    return {
        "checked": len(checked),
        "retaken": sum(takes_made(row.takes) > 1 for row in checked),
        "suspects": [
            {"chunk": index, "text": shown, "reason": suspect}
            for index, _, suspect, shown in rows
            if suspect
        ],
    }


def with_audio_links(checks: Mapping[str, Any] | None, job_id: str) -> dict[str, Any] | None:
    """A chapter's checks as the API shows them: each suspect with the path of its audio."""
    if checks is None:
        return None
    suspects = [
        {**s, "audio": f"/v1/jobs/{job_id}/chunks/{s['chunk']}/audio"} for s in checks["suspects"]
    ]
    return {**checks, "suspects": suspects}


def job_checks(chapters: Iterable[Mapping[str, Any]]) -> dict[str, int] | None:
    """The job's totals over its chapters' ``checks`` (None while no chapter has any)."""
    found = [c["checks"] for c in chapters if c.get("checks")]
    if not found:
        return None
    return {
        "checked": sum(c["checked"] for c in found),
        "retaken": sum(c["retaken"] for c in found),
        "suspects": sum(len(c["suspects"]) for c in found),
    }
