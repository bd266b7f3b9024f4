"""Building a job's rows from a chunked text: used by the API and by embedded mode alike."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.chunking import Chunk as ChunkSpec
from shared.chunking import ChunkedText
from shared.models import Chunk, Job, utcnow
from shared.states import ChunkStatus, JobStatus


def new_job(
    job_id: uuid.UUID,
    tenant_id: uuid.UUID,
    chunked: ChunkedText,
    *,
    voice: str,
    fmt: str,
    engine: str,
    lease_until: datetime,
    title: str | None = None,
    webhook_url: str | None = None,
    metadata: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> tuple[Job, list[Chunk]]:
    """A queued job and one pending chunk row per chunk (add both in one transaction)."""
    job = Job(
        id=job_id,
        tenant_id=tenant_id,
        status=JobStatus.QUEUED,
        voice=voice,
        format=fmt,
        engine=engine,
        title=title,
        webhook_url=webhook_url,
        metadata_=metadata or {},
        text=chunked.normalized,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        chunks_total=len(chunked.chunks),
        chunks_done=0,
        audio_samples=0,
        warnings={"messages": chunked.warnings},
        created_at=utcnow(),
    )
    chunks = [
        Chunk(
            job_id=job_id,
            index=c.index,
            status=ChunkStatus.PENDING,
            text=c.text,
            voice=c.voice or voice,
            boundary=c.boundary.value,
            chapter=c.chapter,
            lease_until=lease_until,
            attempts=0,
        )
        for c in chunked.chunks
    ]
    return job, chunks


def generation_order(chunks: list[ChunkSpec]) -> list[ChunkSpec]:
    """Longest first: the engine's batch then drains evenly at the end of a job instead of
    waiting on one long chunk started last (longest-processing-time-first scheduling)."""
    return sorted(chunks, key=lambda chunk: len(chunk.text), reverse=True)
