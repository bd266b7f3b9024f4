"""Settings, split by concern, read from ``LYRE_*`` environment variables.

Nothing is built at import time: call :func:`get_settings` (cached) where a value is needed.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.infra.checks_settings import ChecksSettings, FaultSettings
from shared.text.chunking import Boundary

ORPHEUS_HUB_ID = "canopylabs/orpheus-3b-0.1-ft"
SNAC_HUB_ID = "hubertsiuzdak/snac_24khz"

# Engines that speak the voices; "null" makes silence (the farm's own overheads, measured and
# tested without speech), "simulated" a continuous-batching GPU in miniature (the dispatch
# benchmarks), "auto" picks orpheus where weights are configured, else espeak.
SpeakingEngine = Literal["orpheus", "espeak"]
ResolvedEngine = Literal[SpeakingEngine, "null", "simulated"]  # what "auto" becomes
EngineName = Literal["auto", ResolvedEngine]
BackendName = Literal["transformers", "vllm", "openai"]
DecoderPath = Literal["tiled", "plain"]
ProductPrecision = Literal["auto", "bf16", "int16", "fp32"]


class UnsupportedSetting(ValueError):
    """A setting's value is valid but cannot run on this machine (the message says which)."""


class ChunkingSettings(BaseModel):
    # ~15 characters of English per second of speech: 400 characters ≈ 27 s, under the
    # ~45 s the Orpheus authors advise per request.
    max_chars: int = Field(default=400, ge=40)
    # An interactive job's (a speech request's) first chunk packs sentences up to this many
    # characters (~7 s of speech), the next up to twice as many, and so on up to max_chars:
    # its first audio comes sooner, and each chunk is made before the ones before it are heard
    interactive_ramp_chars: int = Field(default=100, ge=0)


class OrpheusSettings(BaseModel):
    model: str = ""  # local directory or hub id; empty means "not configured"
    snac_model: str = SNAC_HUB_ID
    backend: BackendName = "transformers"
    device: str = "cpu"  # transformers backend and SNAC decode: "cpu", "cuda", "cuda:1" …
    # SNAC decode on the CPU: "tiled" (shared/snac/tiled.py, the fastest) or "plain" (stock);
    # the api's live streams are decoded by the tiled decoder's layers whatever it says
    snac_decoder: DecoderPath = "tiled"
    # the tiled decoder's matrix products: "auto" picks the fastest this CPU has (bf16 with
    # AVX512-BF16, int16 with AVX2 alone, else fp32); "fp32" gives the stock output to 2e-5
    snac_products: ProductPrecision = "auto"
    temperature: float = 0.6
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    # 82 tokens per audio second at ~15 characters per second is ~5.5 tokens per character;
    # the budget leaves room for slow reading and pauses.
    tokens_per_char: float = 8.0
    min_tokens: int = 7 * 24
    max_tokens: int = 7 * 600  # ≈ 51 s of audio, a hard ceiling per chunk
    # vLLM engine arguments (backend "vllm", vLLM 0.33): weights quantised to FP8 when loaded
    # ("fp8_per_tensor"; None keeps bf16); the KV cache in the model's dtype ("auto"), since an
    # FP8 cache without calibrated scales costs accuracy and a 3B model leaves memory to spare
    quantization: str | None = "fp8_per_tensor"
    kv_cache_dtype: str = "auto"
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    max_model_len: int = 8192
    max_num_seqs: int = 64
    # of them, kept free for chunks someone waits on (shared.speech.seats): books use the rest
    urgent_seats: int = Field(default=8, ge=0)
    enable_prefix_caching: bool = True
    # OpenAI-compatible server (backend "openai")
    openai_url: str = "http://127.0.0.1:8001/v1"
    openai_api_key: str = ""
    openai_model: str = ""
    request_timeout_s: float = 300.0


# Silence before a chunk, by the boundary that precedes it.
PAUSES_S: dict[Boundary, float] = {
    Boundary.START: 0.0,
    Boundary.WORD: 0.05,
    Boundary.CLAUSE: 0.20,
    Boundary.SENTENCE: 0.35,
    Boundary.PARAGRAPH: 0.80,
    Boundary.SPEAKER: 0.50,
    Boundary.CHAPTER: 2.00,
}


class AudioSettings(BaseModel):
    """How chunks are joined and how loud the programme ends up."""

    # e.g. LYRE_AUDIO__PAUSES_S='{"chapter": 3.0}': the boundaries named replace the defaults
    pauses_s: dict[Boundary, float] = Field(default_factory=lambda: dict(PAUSES_S))
    fade_ms: float = 10.0
    silence_threshold_dbfs: float = -50.0
    target_lufs: float = -19.0
    true_peak_dbtp: float = -1.0
    bitrate_kbps: int = 64

    @field_validator("pauses_s", mode="before")
    @classmethod
    def _over_defaults(cls, given: Any) -> Any:
        return {**PAUSES_S, **given} if isinstance(given, dict) else given

    @field_validator("pauses_s")
    @classmethod
    def _not_negative(cls, pauses: dict[Boundary, float]) -> dict[Boundary, float]:
        if any(seconds < 0 for seconds in pauses.values()):
            raise ValueError("a pause cannot be negative")
        return pauses


class DatabaseSettings(BaseModel):
    url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/lyre"
    pool_size: int = 5


class RedisSettings(BaseModel):
    url: str = "redis://127.0.0.1:6379/0"
    # Prepended to every Redis key and channel of the farm (Celery's queues and events, Lyre's
    # own keys): farms, or test runs, that share one Redis database stay apart.
    key_prefix: str = ""
    # Longer than the longest task: an unacknowledged message is redelivered only after it.
    visibility_timeout_s: int = 7200


class StorageSettings(BaseModel):
    backend: Literal["s3", "local"] = "s3"
    endpoint_url: str | None = None  # MinIO or another S3-compatible endpoint; None for AWS
    # The endpoint clients download from, where it differs from the farm's own (compose: the
    # farm reaches http://minio:9000, a client http://localhost:9000); download URLs are
    # signed for it, since the signature covers the host
    public_endpoint_url: str | None = None
    bucket: str = "lyre"
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    presign_expiry_s: int = 3600
    multipart_chunk_mb: int = 8
    local_root: Path = Path(".lyre-store")


class FarmSettings(BaseModel):
    """How the workers share work: leases, reconciling, limits."""

    lease_s: int = 600  # a chunk not finished this long after it was handed out is re-sent
    reconcile_every_s: float = 30.0
    max_input_bytes: int = 5 * 1024 * 1024  # of text, as sent or as read from a book
    max_upload_bytes: int = 50 * 1024 * 1024  # an uploaded file (an EPUB with its images)
    max_unpacked_bytes: int = 256 * 1024 * 1024  # an EPUB unpacked: more is a zip bomb
    task_max_retries: int = 5


class DispatchSettings(BaseModel):
    """How the dispatcher feeds the gpu queue from Postgres (``shared.farm.dispatch``)."""

    every_s: float = 1.0  # a tick at least this often; a submission wakes it at once
    # chunks on the gpu queue or in an engine, per chunk a gpu worker holds at once (its
    # --concurrency): a quarter more waits on the queue, enough for the chunks that finish
    # between two ticks (bench/batching.py), few enough that a newcomer is not long behind
    window_per_slot: float = Field(default=1.25, ge=1.0)
    short_job_chunks: int = Field(default=4, ge=0)  # a job this short goes ahead of books
    # an interactive job's chunks in the window at once: its listener hears them in order, so
    # a few ahead keep up with it, and a long answer leaves the engine's urgent seats to the
    # next listener's first chunk
    interactive_ahead: int = Field(default=4, ge=1)
    # books submitted less than this apart start together (a batch engine does not preempt:
    # the first would keep every slot for a chunk's time); short jobs never wait for it
    gather_s: float = Field(default=0.5, ge=0)
    heartbeat_s: float = 5.0  # how often a gpu worker says it is alive, and with how many slots


class SpeechSettings(BaseModel):
    """OpenAI's speech endpoint (``POST /v1/audio/speech``): how the api follows the job's
    chunks while it streams their audio."""

    poll_s: float = Field(default=0.05, gt=0)  # how often it looks for chunks newly done
    # no new audio for this long ends the request (504 before any audio); the job goes on
    stall_s: float = Field(default=120.0, gt=0)
    # Live streams (shared.farm.live): an interactive job's chunks heard as the engine makes
    # them, not once they are decoded and stored.
    live: bool = True
    live_step_frames: int = Field(default=4, ge=1)  # after the first, frames decoded at a time
    live_decoders: int = Field(default=1, ge=1)  # processes an api process decodes streams in
    live_entries: int = Field(default=4096, ge=16)  # pieces a chunk's stream keeps, about
    live_ttl_s: int = Field(default=300, ge=10)  # a chunk's stream is gone this long after
    # a stream begun may be quiet this long before its chunk's row is read again (a worker
    # died: the farm remakes the chunk, and the listener takes it up from the stored audio)
    live_quiet_s: float = Field(default=1.0, gt=0)
    # pieces a gpu worker holds for Redis at most: past it, a stream is cut (its listeners fall
    # back to the stored chunk) rather than the worker's memory growing
    live_backlog: int = Field(default=20000, ge=100)
    # the WebSocket (api.services.voice_session): text waiting to be spoken, at most; pieces
    # of it made into jobs at once (the one heard and those after it); how long a client may
    # read nothing before it is hung up on
    ws_text_chars: int = Field(default=65536, ge=4096)
    ws_ahead: int = Field(default=2, ge=1)
    ws_send_timeout_s: float = Field(default=30.0, gt=0)


class LimitSettings(BaseModel):
    """Each tenant's limits, unless the tenant has its own (``lyre tenants set``); 0 is none."""

    running_jobs: int = Field(default=16, ge=0)  # more wait, queued, for their turn
    chars_per_day: int = Field(default=20_000_000, ge=0)  # submitted per UTC day
    requests_per_s: float = Field(default=20.0, ge=0)  # API requests, counted in Redis
    request_burst: int = Field(default=40, ge=1)  # requests allowed at once above the rate


class RetentionSettings(BaseModel):
    """How long a job's objects are kept once it has ended (``lyre tenants set NAME
    --retention-days N`` gives a tenant its own ``days``); 0 keeps them for ever."""

    days: int = Field(default=30, ge=0)  # its files: the book, chapters, captions, cover
    # its chunk audio, float32 PCM (345 MB an hour of speech), which a chapter's redo rebuilds
    # the book from: no redo after it has gone; never kept longer than the files
    chunk_days: int = Field(default=7, ge=0)
    every_s: float = Field(default=600.0, gt=0)  # how often beat looks for what has expired
    batch: int = Field(default=200, ge=1)  # jobs of each kind per look; the rest, the next


class SimulatedSettings(BaseModel):
    """The simulated engine: each step of ``step_ms`` gives a token to every running chunk, up
    to ``orpheus.max_num_seqs`` at once, as a continuous-batching engine does."""

    step_ms: float = 12.0  # about one batch-64 step of a 3B model
    tokens_per_char: float = 5.5  # about 82 tokens per second of speech at 15 characters
    # random SNAC codes for the farm's SNAC decoder (orpheus.snac_model), not a finished tone:
    # the decode's cost is then Orpheus's, in the cpu workers and in live streams
    codes: bool = False


class WebhookSettings(BaseModel):
    retry_for_s: int = 24 * 3600
    base_delay_s: float = 5.0
    max_delay_s: float = 3600.0
    timeout_s: float = 10.0
    # Hosts or networks (CIDR) that webhook URLs may resolve to although they are private.
    allowlist: list[str] = []


class FlowerSettings(BaseModel):
    basic_auth: str = "lyre:lyre"  # user:password
    address: str = "127.0.0.1"
    port: int = 5555


class WebSettings(BaseModel):
    """The web page at ``/``: a browser signs in with an API key and gets a session cookie."""

    session_hours: float = Field(default=12.0, gt=0)
    # Secure cookies are sent over HTTPS only: on wherever the page is served behind TLS
    secure_cookies: bool = False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LYRE_", env_nested_delimiter="__", extra="ignore")

    engine: EngineName = "auto"
    work_dir: Path | None = None  # embedded mode keeps chunk audio here; a temp dir if unset
    chunking: ChunkingSettings = ChunkingSettings()
    orpheus: OrpheusSettings = OrpheusSettings()
    audio: AudioSettings = AudioSettings()
    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    storage: StorageSettings = StorageSettings()
    farm: FarmSettings = FarmSettings()
    dispatch: DispatchSettings = DispatchSettings()
    speech: SpeechSettings = SpeechSettings()
    limits: LimitSettings = LimitSettings()
    retention: RetentionSettings = RetentionSettings()
    simulated: SimulatedSettings = SimulatedSettings()
    webhooks: WebhookSettings = WebhookSettings()
    flower: FlowerSettings = FlowerSettings()
    web: WebSettings = WebSettings()
    checks: ChecksSettings = ChecksSettings()
    faults: FaultSettings = FaultSettings()


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
