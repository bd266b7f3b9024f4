"""What work cost, as the API shows it: a job's and each chapter's costs in the job's JSON, and
a tenant's use per day (``GET /v1/usage``)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field


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
