"""Request and response bodies (separate from the database models)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.audio.encode import AudioFormat
from shared.farm.states import JobStatus
from shared.infra.settings import SpeakingEngine
from shared.text.voices import Voice


class JobCreate(BaseModel):
    text: str = Field(description="Plain text or Markdown; headings become chapters.")
    voice: Voice = "tara"
    format: AudioFormat = "mp3"
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
    engine: str = Field(description="The speech engine the job runs on")
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
    id: Voice
    engines: list[SpeakingEngine]


class EventOut(BaseModel):
    id: int
    kind: str = Field(description="job.<status> or chunk.<status>: the state entered")
    chunk: int | None = Field(description="The chunk's index, for a chunk's event")
    data: dict[str, Any]
    created_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_after: int | None = Field(description="Pass as ?after= for the next page")
