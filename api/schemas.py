"""Request and response bodies (separate from the database models)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

from api.progress_shapes import CostOut, Progress
from shared.audio.encode import AudioFormat
from shared.audio.presets import MasteringChoices, PresetName
from shared.farm.seeds import SEED_LIMIT
from shared.farm.states import JobStatus
from shared.infra.json_types import JSON_INTEGER
from shared.infra.settings import ResolvedEngine
from shared.text.lexicon import MAX_ENTRIES, MAX_LENGTH
from shared.text.voices import DEFAULT_VOICE, Voice

SEED_DESCRIPTION = (
    f"0 to {SEED_LIMIT - 1}: same text, voice, settings and seed → same bytes, on any farm "
    "running the same release, however the chunks were scheduled or retried. Without one, "
    "each job samples afresh"
)

Seed = Annotated[int, Field(ge=0, lt=SEED_LIMIT), JSON_INTEGER]

# Some non-white-space character (the complement of what str.strip() removes), in JSON Schema's
# regular expressions: what "not blank" is in the code, stated in the schema
NOT_BLANK = r"[^\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# What shared.text.lexicon.check accepts, which refuses the rest with its own reason
_ENTRY: JsonDict = {"type": "string", "minLength": 1, "maxLength": MAX_LENGTH, "pattern": NOT_BLANK}
LEXICON_SCHEMA: JsonDict = {
    "maxProperties": MAX_ENTRIES,
    "propertyNames": _ENTRY,
    "additionalProperties": _ENTRY,
}


class JobCreate(BaseModel):
    text: str = Field(
        description="Plain text, Markdown, HTML or SSML (a `<speak>` document), told apart "
        "by content; headings become chapters. A multipart request sends it, or an EPUB, as "
        "the file `file` instead.",
        json_schema_extra={"pattern": NOT_BLANK},  # a file's request leaves it empty
    )
    voice: Voice = DEFAULT_VOICE
    format: AudioFormat | None = Field(
        default=None, description="The programme's format; default: the preset's, else mp3"
    )
    preset: PresetName | None = Field(
        default=None,
        description="acx (an MP3 per chapter to ACX's requirements, with a report), podcast "
        "(MP3, -16 LUFS), audiobook (M4B, -19 LUFS)",
    )
    mastering: MasteringChoices = Field(
        default_factory=MasteringChoices,
        description="Any of the preset's defaults to set otherwise (bit rates, target, ceiling, "
        "room tone, the chapter files' format)",
    )
    title: str | None = Field(default=None, max_length=500)
    author: str | None = Field(default=None, max_length=500)
    lexicon: dict[str, str] = Field(
        default_factory=dict,
        description="Word -> respelling, over the tenant's lexicon; whole words, a lower-case "
        "word matches any case",
        json_schema_extra=LEXICON_SCHEMA,
    )
    opening_credits: str | None = Field(default=None, max_length=5000)
    closing_credits: str | None = Field(default=None, max_length=5000)
    webhook_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)
    priority: Annotated[int, Field(ge=-10, le=10), JSON_INTEGER] = Field(
        default=0,
        description="Among the tenant's own jobs, higher first (tenants share the GPUs by "
        "weight whatever their jobs' priorities)",
    )
    seed: Seed | None = Field(default=None, description=SEED_DESCRIPTION)


class Output(BaseModel):
    kind: str = Field(
        description="programme, m4b, chapter, captions, chapters or read_along (the EPUB)"
    )
    format: str
    url: str
    expires_in_s: int
    version: int
    chapter: int | None = Field(default=None, description="The chapter's number, from 1")
    title: str | None = None
    start_s: float | None = None
    coverage: float | None = Field(
        default=None,
        description="read_along: the share of the spoken text (by characters) that has a clip",
    )


class SuspectOut(BaseModel):
    chunk: int = Field(description="The chunk's number in the job (redo it on its own)")
    text: str = Field(description="Its words, as written")
    reason: str = Field(description="Why every take of it failed the checks (the kept one's)")
    audio: str = Field(description="Where to hear it: the chunk's audio as WAV")


class ChapterChecksOut(BaseModel):
    checked: int = Field(description="Its chunks checked")
    retaken: int = Field(description="Of those, made again after a take failed a check")
    suspects: list[SuspectOut] = Field(description="Chunks that failed every take: listen")


class ChecksOut(BaseModel):
    checked: int
    retaken: int
    suspects: int = Field(description="Chunks a person should listen to (see each chapter)")


class ChapterOut(BaseModel):
    number: int = Field(description="From 1, in reading order")
    title: str
    status: str = Field(description="waiting, or done once its file is made")
    version: int
    chunks_done: int
    chunks_total: int
    seconds: float | None
    url: str | None = Field(description="The chapter's file, as soon as it is made")
    expires_in_s: int | None
    acx: dict[str, Any] | None = Field(description="ACX's checks of the file (preset acx)")
    checks: ChapterChecksOut | None = Field(
        description="What the checks found of its chunks, once its file is made"
    )
    cost: CostOut


class JobOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    voice: str
    format: str
    preset: str | None
    mastering: dict[str, Any] = Field(
        description="How its files are made: the preset's "
        "defaults with the request's choices over them"
    )
    engine: str = Field(description="The speech engine the job runs on")
    priority: int
    seed: int | None = Field(description="The seed asked for; null: none, sampled afresh")
    title: str | None
    author: str | None
    language: str | None
    metadata: dict[str, Any]
    progress: Progress
    version: int = Field(description="The version of the outputs being made")
    outputs_version: int | None = Field(description="The version `outputs` are of")
    outputs: list[Output]
    chapters: list[ChapterOut]
    checks: ChecksOut | None = Field(
        description="What the checks of every chunk found, over the chapters made; null "
        "until one is, or where checks are off"
    )
    cost: CostOut = Field(description="Its chapters' costs and its book's files'")
    lexicon: dict[str, Any] = Field(description="Entries in effect, and those applied")
    warnings: list[str]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    chunks_expired_at: datetime | None = Field(
        description="When its chunk audio was removed, at the end of its retention period (a "
        "shorter one than its files'): no chapter can be redone from then on"
    )
    expired_at: datetime | None = Field(
        description="When every file of the job was removed, at the end of its retention "
        "period: none is listed from then on, and downloading it answers 410"
    )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class WebhookAttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class WebhookDeliveryOut(BaseModel):
    id: str
    event_type: str
    url: str
    status: str
    attempts: list[WebhookAttemptOut]
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class VoiceOut(BaseModel):
    id: Voice
    engines: list[ResolvedEngine] = Field(
        description="The engines this farm speaks the voice with (null and simulated: a test "
        "farm's, which make no speech)"
    )


class EventOut(BaseModel):
    id: int
    kind: str = Field(description="job.<status> or chunk.<status>: the state entered")
    chunk: int | None = Field(description="The chunk's index, for a chunk's event")
    data: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page")


class ChapterRedo(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON's types as the schema says

    text: str | None = Field(
        default=None,
        max_length=1_000_000,
        description="Corrected text, with words to say; default: the same",
        json_schema_extra={"pattern": NOT_BLANK},  # what the intake refuses as empty
    )
    voice: Voice | None = Field(default=None, description="Another voice; default: the same")


class ChunkRedo(BaseModel):
    model_config = ConfigDict(strict=True)

    text: str | None = Field(
        default=None,
        max_length=100_000,
        description="Corrected text for this chunk alone (one chunk's worth); default: the same "
        "words, sampled afresh",
        json_schema_extra={"pattern": NOT_BLANK},
    )
    voice: Voice | None = Field(default=None, description="Another voice; default: the same")


class WebhookSecretOut(BaseModel):
    secret: str = Field(
        description="The Standard Webhooks secret (whsec_…) this tenant's webhooks are signed "
        "with: verify each delivery's webhook-signature with it"
    )


class LimitsOut(BaseModel):
    weight: float = Field(description="The tenant's share of the GPUs against others', by ratio")
    running_jobs: int = Field(description="Jobs running at once; more wait, queued (0: none)")
    chars_per_day: int = Field(description="Characters submitted per UTC day (0: no limit)")
    chars_today: int = Field(description="Characters submitted so far today (UTC)")
    requests_per_s: float = Field(description="API requests a second (0: no limit)")
    request_burst: int = Field(description="Requests allowed at once above that rate")
    retention_days: int = Field(
        description="Days a job's files are kept once it has ended (0: for ever)"
    )
    chunk_retention_days: int = Field(
        description="Days a job's chunk audio is kept once it has ended, for a chapter's redo "
        "(0: for ever)"
    )


class LexiconIn(BaseModel):
    model_config = ConfigDict(strict=True)  # JSON's types as the schema says

    entries: dict[str, str] = Field(
        description="Word -> respelling, for every job of the tenant",
        json_schema_extra=LEXICON_SCHEMA,
    )


class PreviewLine(BaseModel):
    chunk: int = Field(description="The chunk's index, in reading order")
    chapter: int = Field(description="Its chapter's number, from 1")
    chapter_title: str
    voice: str
    said: str = Field(description="What the engine will be asked to say (after the lexicon)")
    written: str = Field(description="The author's words, as captions and the page show them")
    pause_s: float | None = Field(description="SSML's break before it, in seconds")
    rate: float = Field(description="SSML's prosody rate: 1 is the voice's own")
    marks: list[str] = Field(description="SSML's marks in it, by name")


class PreviewOut(BaseModel):
    """A job's text as the farm would speak it, chunk by chunk; no job is made."""

    engine: str = Field(description="The engine this farm would speak it with")
    title: str | None
    author: str | None
    chapters: list[str] = Field(description="The chapters' titles, in order")
    chunks: list[PreviewLine]
    warnings: list[str]
