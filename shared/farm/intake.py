"""One intake for every way a text comes in: the API's submit (a JSON text or an uploaded file),
the web page's form, a speech request, ``lyre synth``, and a chapter's corrected text.

Each reads its input here, under the same limits (``FarmSettings``: the input's bytes, the text
read from it, an EPUB unpacked) and with the same messages: the document told apart by content
and read, the lexicons merged, the credits added, the text chunked and checked for words, the
engine and the mastering chosen, and the job's request built (:func:`take_in`); then the job is
stored (:func:`enter_job`). Callers only translate :class:`InputRefused` to their own kind of
refusal (a 422 or 413, a CLI message with exit code 2).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shared.audio.encode import AudioFormat
from shared.audio.presets import PresetName, mastering
from shared.farm.context import FarmContext
from shared.farm.jobs import JobRequest, new_job, say, submit_job
from shared.infra.models import Job
from shared.infra.settings import Settings
from shared.infra.storage import cover_key, source_key
from shared.speech.factory import resolve_engine_name
from shared.text.chunking import ChunkedText, chunk_text
from shared.text.documents import Document, read_document
from shared.text.epub import Cover
from shared.text.epub_archive import BookRefused
from shared.text.lexicon import Lexicon, LexiconRefused, merge
from shared.text.voices import DEFAULT_VOICE, Voice
from shared.webhooks.urls import WebhookUrlRefused, check_webhook_url

NOTHING_TO_SAY = "the input has nothing to say (no words)"


class InputRefused(ValueError):
    """The input cannot be made into a job (the message says why)."""


class InputTooLarge(InputRefused):
    """The input is larger than this farm accepts."""


def check_size(what: str, size: int, limit: int) -> None:
    """Refuse ``what`` (``"the file"``, ``"the text"``) past ``limit`` bytes."""
    if size > limit:
        raise too_large(what, limit)


def too_large(what: str, limit: int) -> InputTooLarge:
    """The one message every way in gives for an input past its limit."""
    return InputTooLarge(f"{what} is larger than this farm accepts ({describe_size(limit)})")


def describe_size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


@dataclass(frozen=True)
class Submission:
    """What a client asks a job to be, whoever the client is (the API, the page, the CLI)."""

    data: bytes  # the document: a text, Markdown, HTML or an EPUB, told apart by content
    filename: str | None = None  # an uploaded file's name (None: a text sent as such)
    voice: Voice = DEFAULT_VOICE
    format: AudioFormat | None = None  # the programme's; None: the preset's, else mp3
    preset: PresetName | None = None
    choices: Mapping[str, Any] = field(default_factory=dict)  # mastering, over the preset's
    title: str | None = None
    author: str | None = None
    lexicon: Mapping[str, str] = field(default_factory=dict)  # over the tenant's
    opening_credits: str | None = None
    closing_credits: str | None = None
    webhook_url: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    priority: int = 0
    seed: int | None = None
    interactive: bool = False  # someone waits on it (a speech request): short first chunks


@dataclass(frozen=True)
class Line:
    """One chunk as the engine will be asked to say it: ``lyre synth --dry-run``'s line."""

    index: int
    chapter: int  # from 0
    chapter_title: str
    voice: str
    said: str  # what the engine hears (after the lexicon)
    written: str  # the author's words, as captions show them
    pause_s: float | None = None  # SSML's break before it
    rate: float = 1.0  # SSML's prosody rate
    marks: tuple[str, ...] = ()  # SSML's marks in it


@dataclass(frozen=True)
class Intake:
    """A submission read and checked: the job it makes, before the job has an id."""

    document: Document
    chunked: ChunkedText
    request: JobRequest  # without its cover's key, which names the job: see for_job
    engine_note: str | None  # why this engine (auto fell back to espeak-ng), to tell the user
    source: bytes | None = None  # the EPUB, kept where a read-along EPUB is made of its pages

    @property
    def cover(self) -> Cover | None:
        return self.document.cover

    def for_job(self, job_id: uuid.UUID) -> JobRequest:
        """The request of the job ``job_id``: its cover stored under the job's key."""
        if self.cover is None:
            return self.request
        return replace(self.request, cover_key=cover_key(str(job_id), self.cover.extension))

    @property
    def warnings(self) -> list[str]:
        """What the job's warnings will say: the input read otherwise than written, tags
        removed."""
        return [*self.request.warnings, *self.chunked.warnings]

    def preview(self) -> list[Line]:
        """Every chunk as the engine will be asked to say it, and nothing stored."""
        said = say(self.chunked, Lexicon(self.request.lexicon))
        return [
            Line(
                span.index,
                span.chapter,
                self.chunked.chapters[span.chapter],
                span.voice or self.request.voice,
                spoken,
                span.text,
                span.pause_s,
                span.rate,
                tuple(name for name, _ in span.marks),
            )
            for span, spoken in zip(self.chunked.spans, said, strict=True)
        ]

    def content_id(self) -> uuid.UUID:
        """Same text, voice, making and seed, same id: embedded mode's job id, so that a rerun
        samples every chunk the same way and an interrupted run resumes where it stopped."""
        request = self.request
        mastering = request.mastering.model_dump()
        if not mastering["read_along"]:  # the ids runs had before there was a read-along
            del mastering["read_along"]
        made: list[Any] = [request.voice, mastering, request.lexicon]
        if request.seed is not None:  # unseeded runs keep the ids they had
            made.append(request.seed)
        if self.document.controls:  # SSML's markers are indices: what they stand for counts
            made.append(repr(self.document.controls))
        making = json.dumps(made, sort_keys=True)
        digest = hashlib.sha256(f"{making}\0{self.chunked.normalized}".encode())
        return uuid.UUID(digest.hexdigest()[:32])


def take_in(
    settings: Settings, submission: Submission, tenant_lexicon: Mapping[str, str] | None = None
) -> Intake:
    """Read and check ``submission`` as a job of a tenant whose lexicon is ``tenant_lexicon``;
    :class:`InputRefused` says why not. Nothing is stored."""
    if submission.webhook_url:
        try:
            check_webhook_url(submission.webhook_url, settings.webhooks.allowlist)
        except WebhookUrlRefused as exc:
            raise InputRefused(str(exc)) from None
    document, lexicon = _read(settings, submission, tenant_lexicon)
    text = with_credits(
        document, submission.opening_credits, submission.closing_credits, submission.title
    )
    check_size("the text", len(text.encode()), settings.farm.max_input_bytes)
    chunking = settings.chunking
    ramp = chunking.interactive_ramp_chars if submission.interactive else 0
    chunked = chunk_text(
        text,
        chunking.max_chars,
        structured=document.structured,
        ramp_chars=ramp,
        controls=document.controls,
    )
    if not chunked.spans:
        raise InputRefused(NOTHING_TO_SAY)
    engine, note = resolve_engine_name(settings)
    request = JobRequest(
        voice=submission.voice,
        engine=engine,
        mastering=mastering(
            submission.preset, settings.audio, {"format": submission.format, **submission.choices}
        ),
        preset=submission.preset,
        title=submission.title or document.title,
        author=submission.author or document.author,
        language=document.language,
        lexicon=lexicon,
        webhook_url=submission.webhook_url,
        metadata={**dict(document.about), **submission.metadata},  # the client's first
        priority=submission.priority,
        interactive=submission.interactive,
        seed=submission.seed,
        warnings=document.warnings,
    )
    read_along = document.kind == "epub" and request.mastering.read_along
    return Intake(document, chunked, request, note, submission.data if read_along else None)


def _read(
    settings: Settings, submission: Submission, tenant_lexicon: Mapping[str, str] | None
) -> tuple[Document, dict[str, str]]:
    """The document and the lexicon in effect."""
    data, what = submission.data, "the file" if submission.filename is not None else "the text"
    check_size(what, len(data), settings.farm.max_upload_bytes)
    if not data.strip():
        raise InputRefused(f"{what} is empty")
    try:
        document = read_document(data, settings.farm.max_unpacked_bytes, submission.filename)
        return document, merge(tenant_lexicon, submission.lexicon)
    except (BookRefused, LexiconRefused) as exc:
        raise InputRefused(str(exc)) from None


def enter_job(
    farm: FarmContext,
    tenant_id: uuid.UUID,
    job_id: uuid.UUID,
    intake: Intake,
    request: JobRequest,
    *,
    chars_per_day: int = 0,
    replace: bool = False,
) -> Job:
    """Store the job ``intake`` makes, with ``request`` (``intake.for_job(job_id)``, maybe with
    more said): its cover and, for a read-along EPUB, the submitted EPUB; then its rows and
    chunks (``submit_job``, which also says what ``chars_per_day`` and ``replace`` do). A job
    that is refused leaves neither behind."""
    job, chunks, chapters = new_job(job_id, tenant_id, intake.chunked, request)
    cover, key = intake.cover, request.cover_key
    kept = []
    if cover is not None and key:
        farm.store.put_bytes(key, cover.data)
        kept.append(key)
    if intake.source is not None:
        kept.append(source_key(str(job_id)))
        farm.store.put_bytes(kept[-1], intake.source)
    try:
        submit_job(farm, job, chunks, chapters, replace=replace, chars_per_day=chars_per_day)
    except Exception:
        farm.store.delete_keys(kept)
        raise
    return job


def with_credits(
    document: Document, opening: str | None, closing: str | None, title: str | None
) -> str:
    """The text with opening and closing credits as chapters of their own (ACX asks for them
    as files of their own); a text that does not start with a heading gets one, so that it
    is not read as part of the opening credits."""
    text = document.text
    if opening and opening.strip():
        if not text.lstrip().startswith("#"):
            text = f"# {title or document.title or 'Chapter 1'}\n\n{text}"
        text = f"# Opening Credits\n\n{opening.strip()}\n\n{text}"
    if closing and closing.strip():
        text = f"{text}\n\n# Closing Credits\n\n{closing.strip()}"
    return text


def take_in_chapter(settings: Settings, text: str, title: str) -> ChunkedText:
    """A chapter's corrected text, chunked as one chapter under ``title`` (unless the text
    starts with a heading of its own), under the same limit and messages as a job's text."""
    check_size("the text", len(text.encode()), settings.farm.max_input_bytes)
    if not any(ch.isalnum() for ch in text):  # the title alone would be spoken
        raise InputRefused(NOTHING_TO_SAY)
    body = text if text.lstrip().startswith("#") else f"# {title}\n\n{text}" if title else text
    chunked = chunk_text(body, settings.chunking.max_chars, structured=True)
    if not chunked.spans:
        raise InputRefused(NOTHING_TO_SAY)
    return chunked
