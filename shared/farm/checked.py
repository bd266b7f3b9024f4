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

REVIEW_EVENT = "job.needs_review"  # a webhook's: the job finished with suspect chunks


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
        "retaken": sum(len({t["take"] for t in row.takes}) > 1 for row in checked),
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
