"""How far a job is and what its work cost, as the API shows them in the job's JSON (its
progress; its and each chapter's costs), and a tenant's use per day (``GET /v1/usage``)."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field


def _written_as_a_day(value: object) -> object:
    """Only ``YYYY-MM-DD``: pydantic would also read a number as seconds since 1970."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


IsoDay = Annotated[date, BeforeValidator(_written_as_a_day)]


class Progress(BaseModel):
    stage: Literal["queued", "generating", "chapters", "book_files", "finished"] = Field(
        description="Waiting for the GPUs; its chunks being made; its chapters' files being "
        "made; the book's own files (programme, M4B, captions) being made; or ended"
    )
    chunks_done: int
    chunks_total: int
    audio_seconds: float


class CpuOut(BaseModel):
    decode: float = Field(description="CPU seconds decoding its chunks' speech to audio")
    stitch: float = Field(description="CPU seconds reading, joining and shaping its audio")
    encode: float = Field(description="CPU seconds encoding its files")


class CostOut(BaseModel):
    """Summed as the work is done, and never taken back: work redone is counted again."""

    engine_s: float = Field(
        description="Its chunks' share of the speech engine's (the GPU's) busy seconds"
    )
    cpu_s: CpuOut
    stored_bytes: int = Field(description="Bytes written to the object store (audio and files)")


class UsageOut(BaseModel):
    characters: int = Field(description="Characters submitted (redone text too)")
    audio_s: float = Field(description="Seconds of speech made")
    engine_s: float = Field(description="Speech engine (GPU) seconds")
    cpu_s: float = Field(description="CPU seconds (decode, stitch and encode)")
    stored_bytes: int


class UsageDayOut(UsageOut):
    day: date = Field(description="A UTC day")


class TenantUsageOut(BaseModel):
    tenant: str
    from_: date = Field(alias="from", description="The first day, UTC")
    to: date = Field(description="The last day, UTC (included)")
    days: list[UsageDayOut] = Field(description="Days with any use, in order")
    total: UsageOut
