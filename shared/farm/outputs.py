"""A job's files: their names and tags, the captions and chapter list made from where each chunk
lies, and the listing (with download URLs) that the job's JSON carries."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    Select,
    bindparam,
    select,
)
from sqlalchemy.orm import Session

from shared.audio import SAMPLE_RATE
from shared.audio.captions import Cue, chunk_cues
from shared.audio.programme import Layout, Part
from shared.farm.checked import with_audio_links
from shared.farm.context import FarmContext
from shared.farm.usage import COST_COLUMNS, cost_json
from shared.infra.models import Chapter, Job
from shared.text.chunking import sentences

CONTENT_TYPES = {
    "vtt": "text/vtt",
    "srt": "application/x-subrip",
    "json": "application/json",
    "epub": "application/epub+zip",
}


def chapter_name(chapter: int, fmt: str) -> str:
    return f"chapter-{chapter + 1:03d}.{fmt}"


def chapter_tags(job: Job, title: str, chapter: int, total: int) -> dict[str, str]:
    """ID3 / MP4 tags of a chapter's file: players sort an album by its track numbers."""
    return {
        "title": title or f"Chapter {chapter + 1}",
        "album": job.title or "",
        "artist": job.author or "",
        "track": f"{chapter + 1}/{total}",
        "language": job.language or "",
    }


def book_tags(job: Job) -> dict[str, str]:
    """The book's tags, as library servers read them (audiobookshelf: album the title, artist
    the author, composer the narrator, comment the description)."""
    metadata = job.metadata_ or {}
    return {
        "title": job.title or "",
        "album": job.title or "",
        "artist": job.author or "",
        "album_artist": job.author or "",
        "composer": narrator(job),
        "genre": "Audiobook",
        "language": job.language or "",
        "publisher": str(metadata.get("publisher") or ""),
        "comment": " ".join(_MARKUP.sub(" ", str(metadata.get("description") or "")).split()),
    }


def narrator(job: Job) -> str:
    """Who reads the book: the voice."""
    return f"{job.voice.capitalize()} (Lyre)"


_MARKUP = re.compile(r"<[^>]+>")


_TAG = re.compile(r"<[A-Za-z_]+>")


def captions(parts: Sequence[Part], layout: Layout) -> list[Cue]:
    """One cue per sentence, in programme time."""
    return [cue for _, cues in cues_by_part(parts, layout) for cue in cues]


def cues_by_part(parts: Sequence[Part], layout: Layout) -> list[tuple[Part, list[Cue]]]:
    """Each chunk's sentences as cues, in the layout's time."""
    out = []
    for part, start in zip(parts, layout.starts, strict=True):
        said = [s for s in sentences(_TAG.sub(" ", part.caption)) if s.strip()]
        if said and part.stats.samples:
            seconds = part.stats.samples / SAMPLE_RATE
            out.append((part, chunk_cues(said, start / SAMPLE_RATE, seconds, part.stats.steps)))
    return out


def chapter_list(
    layout: Layout, parts: Sequence[Part] = (), checks: Sequence[Mapping[str, Any] | None] = ()
) -> str:
    """The chapters JSON: title, start and end in seconds of the programme, and what the
    checks found of its chunks (``shared.farm.checked``) where they ran; and SSML's marks with
    their times, where the text had any."""
    listing: dict[str, Any] = {
        "chapters": [
            {
                "number": i + 1,
                "title": mark.title,
                "start_s": round(mark.start / SAMPLE_RATE, 3),
                "end_s": round(mark.end / SAMPLE_RATE, 3),
                **({"checks": checks[i]} if i < len(checks) and checks[i] else {}),
            }
            for i, mark in enumerate(layout.marks)
        ],
        "duration_s": round(layout.samples / SAMPLE_RATE, 3),
    }
    marks = ssml_marks(parts, layout)
    if marks:
        listing["marks"] = marks
    return json.dumps(listing, indent=2, ensure_ascii=False)


def ssml_marks(parts: Sequence[Part], layout: Layout) -> list[dict[str, Any]]:
    """Each ``<mark>``: its name and time in the programme, placed in its chunk by the share
    of the chunk's words before it (as a caption's sentence is)."""
    marks = []
    for part, start in zip(parts, layout.starts, strict=True):
        for name, at in part.marks:
            share = at / max(1, len(part.caption))
            seconds = (start + share * part.stats.samples) / SAMPLE_RATE
            marks.append({"name": name, "time_s": round(seconds, 3), "chunk": part.index})
    return marks


def download_name(job: Job, name: str) -> str:
    """What a download is saved as: the title for the book (``Title.m4b``), the title and the
    file's own name for the rest (``Title - chapter-002.mp3``)."""
    title = "".join(ch for ch in (job.title or "") if ch.isalnum() or ch in " -_").strip()
    stem = title or str(job.id)
    return f"{stem}.{name[5:]}" if name.startswith("book.") else f"{stem} - {name}"


def listing(farm: FarmContext, job: Job) -> list[dict[str, Any]]:
    """The current version's files with download URLs."""
    expiry = farm.settings.storage.presign_expiry_s
    return [
        {
            **{k: v for k, v in output.items() if k != "key"},
            "url": farm.store.presign(
                output["key"], download_name(job, output["key"].rsplit("/", 1)[-1])
            ),
            "expires_in_s": expiry,
        }
        for output in job.outputs
    ]


# Each chapter of some jobs with its chunks done and in all: one statement over the chapter rows
# (their counters, moved by the decodes: no count of chunk rows at each poll), of columns (no
# ORM objects), built once.
_CHAPTER = Chapter.__table__.c
_SHOWN = (
    *("job_id", "index", "title", "status", "version", "samples", "output_key", "report"),
    *("checks", "chunks_done", "chunks_total", *COST_COLUMNS),
)


def _chapters_of(jobs: Callable[[Any], ColumnElement[bool]]) -> Select:
    return (
        select(*(_CHAPTER[name] for name in _SHOWN))
        .where(jobs(_CHAPTER.job_id))
        .order_by(_CHAPTER.job_id, _CHAPTER.index)
    )


CHAPTER_PROGRESS = _chapters_of(lambda job: job.in_(bindparam("jobs", expanding=True)))
# One job's (``:job``): its poll reads it as a JSON column of its own statement (api.services.polls)
ONE_JOB_CHAPTERS = _chapters_of(lambda job: job == bindparam("job"))


def chapter_progress(
    farm: FarmContext, reader: Session | Connection, job_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Each job's chapters: title, status, chunks done of total, and the file once made."""
    out: dict[uuid.UUID, list[dict[str, Any]]] = {job_id: [] for job_id in job_ids}
    for chapter in reader.execute(CHAPTER_PROGRESS, {"jobs": list(job_ids)}).mappings():
        out[chapter["job_id"]].append(chapter_entry(farm, chapter))
    return out


def chapter_entry(farm: FarmContext, chapter: Mapping[str, Any] | RowMapping) -> dict[str, Any]:
    """A chapter as a job's JSON shows it, from its row of ``CHAPTER_PROGRESS`` (or the same
    columns as a poll reads them, in JSON)."""
    key = chapter["output_key"]  # the chapter's file, once it is made
    samples = chapter["samples"]
    return {
        "number": chapter["index"] + 1,
        "title": chapter["title"],
        "status": chapter["status"],
        "version": chapter["version"],
        "chunks_done": chapter["chunks_done"],
        "chunks_total": chapter["chunks_total"],
        "seconds": round(samples / SAMPLE_RATE, 3) if samples else None,
        "url": farm.store.presign(key, key.rsplit("/", 1)[-1]) if key else None,
        "expires_in_s": farm.settings.storage.presign_expiry_s if key else None,
        "acx": chapter["report"],
        "checks": with_audio_links(chapter["checks"], str(chapter["job_id"])),
        "cost": cost_json(chapter.__getitem__),
    }
