"""Database tables (SQLAlchemy 2). Portable types only: the same schema runs on SQLite."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.infra.costs import ChunkCosts, Costs, JobCosts


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


class Tenant(Base):
    __tablename__ = "tenant"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    webhook_secret: Mapped[str] = mapped_column(String(100))  # "whsec_" + base64
    lexicon: Mapped[dict[str, Any]] = mapped_column(default=dict)  # word -> respelling
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # its share of the GPUs against other tenants', and its own limits (None: the farm's)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    running_jobs: Mapped[int | None] = mapped_column(Integer)
    chars_per_day: Mapped[int | None] = mapped_column(BigInteger)
    requests_per_s: Mapped[float | None] = mapped_column(Float)
    # days a job's files are kept after it ends (None: the farm's setting; 0: for ever)
    retention_days: Mapped[int | None] = mapped_column(Integer)


class TenantUsage(Base):
    """A tenant's use on a UTC day: characters submitted (its daily limit counts them), and the
    audio, engine and CPU seconds and bytes of its jobs that ended that day."""

    __tablename__ = "tenant_usage"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "day"),)

    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    day: Mapped[date]
    chars: Mapped[int] = mapped_column(BigInteger)
    audio_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    engine_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    cpu_s: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    prefix: Mapped[str] = mapped_column(String(16))  # shown to people; the key itself is not kept
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]  # past it, as revoked


class WebSession(Base):
    """A browser signed in to the web page with a key; its cookie holds the token, hashed here."""

    __tablename__ = "web_session"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_key.id", ondelete="CASCADE"))
    csrf: Mapped[str] = mapped_column(String(64))  # the token every form of the session carries
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Job(JobCosts, Base):
    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_job_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_job_status", "status"),
        Index(
            "ix_job_to_expire",
            "finished_at",
            postgresql_where=text("expired_at IS NULL"),
            sqlite_where=text("expired_at IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16))
    voice: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(8))
    engine: Mapped[str] = mapped_column(String(16))  # the one that resolved at submission
    title: Mapped[str | None] = mapped_column(String(500))
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    chunks_total: Mapped[int] = mapped_column(Integer)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    audio_samples: Mapped[int] = mapped_column(BigInteger, default=0)
    warnings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    output_key: Mapped[str | None] = mapped_column(String(500))
    output_samples: Mapped[int | None] = mapped_column(BigInteger)
    # books: what the input said of itself, and how the files are made (shared.audio.presets)
    author: Mapped[str | None] = mapped_column(String(500))
    language: Mapped[str | None] = mapped_column(String(35))
    cover_key: Mapped[str | None] = mapped_column(String(500))
    preset: Mapped[str | None] = mapped_column(String(16))
    mastering: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lexicon: Mapped[dict[str, Any]] = mapped_column(default=dict)  # entries applied, and counts
    # the files of the current version: {"kind", "format", "key", "chapter"?}
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)  # of the outputs being made
    priority: Mapped[int] = mapped_column(Integer, default=0)  # among its tenant's jobs
    chars: Mapped[int] = mapped_column(Integer, default=0)  # of text submitted (daily limit)
    # someone waits on it (a speech request): its chunks go ahead of books', like a short job's
    interactive: Mapped[bool] = mapped_column(Boolean, default=False)
    # asked for: chunks' seeds derive from it and their index, so the output is reproducible
    seed: Mapped[int | None] = mapped_column(BigInteger)
    stitch_lease_until: Mapped[datetime | None]
    stitch_holder: Mapped[str | None] = mapped_column(String(32))  # the book's stitch that has it
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # its retention: the chunk audio removed (no chapter can be redone), then every object
    chunks_expired_at: Mapped[datetime | None]
    expired_at: Mapped[datetime | None]


class Chunk(ChunkCosts, Base):
    __tablename__ = "chunk"
    __table_args__ = (
        Index("ix_chunk_status_lease", "status", "lease_until"),
        Index("ix_chunk_job_chapter", "job_id", "chapter", "status"),
        # the dispatcher's: a job's chunks still in Postgres in order, and the window
        Index(
            "ix_chunk_to_send",
            "job_id",
            "chapter",
            "index",
            postgresql_where=text("status = 'pending' AND sent_at IS NULL"),
            sqlite_where=text("status = 'pending' AND sent_at IS NULL"),
        ),
        Index(
            "ix_chunk_sent",
            "job_id",
            postgresql_where=text("status = 'pending' AND sent_at IS NOT NULL"),
            sqlite_where=text("status = 'pending' AND sent_at IS NOT NULL"),
        ),
    )

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("job.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)  # what is spoken
    caption: Mapped[str | None] = mapped_column(Text)  # what is shown, where a lexicon changed it
    voice: Mapped[str] = mapped_column(String(32))
    boundary: Mapped[str] = mapped_column(String(16))
    chapter: Mapped[int] = mapped_column(Integer)  # index into the job's chapters
    # what SSML asks of its audio: the pause before it (None: its boundary's), its speech's
    # rate (None: the voice's own), its marks as [name, spoken characters before it]
    pause_s: Mapped[float | None] = mapped_column(Float)
    rate: Mapped[float | None] = mapped_column(Float)
    marks: Mapped[list[Any] | None] = mapped_column(JSON)
    lease_until: Mapped[datetime | None]
    # the dispatcher's marks: when it put the chunk on the gpu queue (None: still waiting in
    # Postgres for its turn) and when a gpu worker took it from there
    sent_at: Mapped[datetime | None]
    taken_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # its takes (shared.checks): the one generated next or kept, each checked one's findings
    # as {"take", "stage", "reasons"}, and why the kept one failed where every take did
    take: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    takes: Mapped[list[Any] | None] = mapped_column(JSON)
    suspect: Mapped[str | None] = mapped_column(Text)
    dropped_tokens: Mapped[int | None] = mapped_column(Integer)
    samples: Mapped[int | None] = mapped_column(BigInteger)
    # the engine's output (codes, a few KB per chunk) from generation until decode; the row,
    # not the object store, so that it commits with the state change in one round trip
    speech: Mapped[bytes | None] = mapped_column(LargeBinary)
    loudness_steps: Mapped[bytes | None] = mapped_column(LargeBinary)  # float64 per 100 ms
    true_peak: Mapped[float | None] = mapped_column(Float)
    energy: Mapped[float | None] = mapped_column(Float)  # sum of squares (a file's RMS, ACX)
    generate_s: Mapped[float | None] = mapped_column(Float)  # time in the engine
    decode_s: Mapped[float | None] = mapped_column(Float)  # time to decode, trim and measure
    done_at: Mapped[datetime | None]


class Chapter(Costs, Base):
    """A unit of progress a listener sees: its file is made as soon as its chunks are done."""

    __tablename__ = "chapter"

    job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("job.id", ondelete="CASCADE"), primary_key=True
    )
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, default=1)  # the job version it was made for
    lease_until: Mapped[datetime | None]  # its stitch's
    stitch_holder: Mapped[str | None] = mapped_column(String(32))  # the stitch that has it
    output_key: Mapped[str | None] = mapped_column(String(500))
    # its chunks in all and decoded: the decode that finishes one adds it in the same statement
    chunks_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    chunks_done: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    samples: Mapped[int | None] = mapped_column(BigInteger)  # of its file, at 24 kHz
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # ACX's checks
    # its chunks' checks (shared.farm.checked): checked, retaken, suspects with text and reason
    checks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    done_at: Mapped[datetime | None]


class DeletedJob(Base):
    """A deleted job: its objects are removed again a lease later (a stage may write after)."""

    __tablename__ = "deleted_job"

    job_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(index=True)


class GpuWorker(Base):
    """A live gpu worker (refreshed, else gone) and the chunks it holds at once (the window)."""

    __tablename__ = "gpu_worker"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    slots: Mapped[int] = mapped_column(Integer)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobEvent(Base):
    """A job's history: one row per change of the job's or a chunk's status, written by the
    migration's triggers in the statement that makes the change (``GET /v1/jobs/{id}/events``)."""

    __tablename__ = "job_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """The outbox: one row per event to send, written in the transaction that caused it."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the webhook-id header
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("job.id", ondelete="CASCADE"), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempt"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_delivery.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float] = mapped_column(Float)
