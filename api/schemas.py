"""Request and response bodies (separate from the database models)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from shared.encode import FORMATS
from shared.states import JobStatus
from shared.voices import VOICES

Voice = Literal["tara", "leah", "jess", "leo", "dan", "mia", "zac", "zoe"]
Format = Literal["wav", "flac", "mp3", "opus"]
assert set(get_args(Voice)) == set(VOICES) and set(get_args(Format)) == set(FORMATS)


class JobCreate(BaseModel):
    text: str = Field(description="Plain text or Markdown; headings become chapters.")
    voice: Voice = "tara"
    format: Format = "mp3"
    title: str | None = Field(default=None, max_length=500)
    webhook_url: str | None = Field(default=None, max_length=2000)
    metadata: dict[str, Any] = Field(default_factory=dict)


class Progress(BaseModel):
    chunks_done: int
    chunks_total: int
    audio_seconds: float


class Output(BaseModel):
    format: str
    url: str
    expires_in_s: int


class JobOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    voice: str
    format: str
    title: str | None
    metadata: dict[str, Any]
    progress: Progress
    outputs: list[Output]
    warnings: list[str]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


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
    id: str
    engines: list[str]
