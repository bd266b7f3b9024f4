"""Embedded mode: the farm's stages in one process, a thread pool for the executor and a
local folder for the object store."""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import torch

from shared.chunking import Chunk, ChunkedText
from shared.codec import SAMPLE_RATE
from shared.decoder import SnacDecoder
from shared.encode import AudioWriter
from shared.engines import Engine, build_engine
from shared.engines.base import EngineLoop
from shared.pipeline import ChunkResult, generate_speech, render_speech, speech_request
from shared.settings import Settings
from shared.stitch import join_chunks, pause_samples, programme_gain
from shared.storage import LocalStore, chunk_audio_key, get_pcm, put_pcm


@dataclass
class Summary:
    engine: str
    chunks: int
    audio_seconds: float
    wall_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def real_time_factor(self) -> float:
        """Wall time per second of audio: below 1 is faster than real time."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else float("inf")


@dataclass
class Job:
    chunked: ChunkedText
    voice: str
    fmt: str
    output: Path
    title: str | None = None

    @property
    def job_id(self) -> str:
        """Same text and voice, same id: a rerun samples and decodes every chunk the same way."""
        digest = hashlib.sha256(f"{self.voice}\0{self.chunked.normalized}".encode())
        return "local-" + digest.hexdigest()[:16]


class EmbeddedRunner:
    def __init__(self, settings: Settings, engine_name: str) -> None:
        self.settings = settings
        self.engine_name = engine_name
        self.engine: Engine = build_engine(settings, engine_name)
        self.decoder = (
            SnacDecoder.load(settings.orpheus.snac_model, settings.orpheus.device)
            if engine_name == "orpheus"
            else None
        )
        self.loop = EngineLoop()
        self.workers = os.cpu_count() or 1
        torch.set_num_threads(1)  # one core per chunk in flight; the pool uses every core

    def close(self) -> None:
        self.loop.run(self.engine.aclose())
        self.loop.close()

    def _process(self, store: LocalStore, job: Job, chunk: Chunk) -> ChunkResult:
        request = speech_request(job.job_id, chunk, job.voice)
        speech = generate_speech(self.loop, self.engine, request)
        pcm, stats = render_speech(speech, self.decoder, request.seed, self.settings.audio)
        put_pcm(store, chunk_audio_key(job.job_id, chunk.index), pcm)
        codes = speech.codes
        return ChunkResult(
            chunk.index,
            stats,
            speech.tokens,
            codes.dropped_tokens if codes else 0,
            codes.partial_frames if codes else 0,
        )

    def run(self, job: Job, on_chunk: Callable[[ChunkResult], None] = lambda _: None) -> Summary:
        started = time.perf_counter()
        chunks = job.chunked.chunks
        with ExitStack() as stack:
            work_dir = self.settings.work_dir or Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="lyre-"))
            )
            store = LocalStore(work_dir)
            pool = stack.enter_context(ThreadPoolExecutor(self.workers, "lyre-chunk"))
            results: list[ChunkResult] = []
            for result in pool.map(lambda c: self._process(store, job, c), chunks):
                results.append(result)
                on_chunk(result)
            samples = self._stitch(store, job, results)
        warnings = list(job.chunked.warnings)
        dropped = sum(r.dropped_tokens for r in results)
        if dropped:
            warnings.append(
                f"dropped {dropped} invalid audio token(s) in "
                f"{sum(r.partial_frames for r in results)} partial frame(s)"
            )
        return Summary(
            self.engine_name,
            len(chunks),
            samples / SAMPLE_RATE,
            time.perf_counter() - started,
            warnings,
        )

    def _stitch(self, store: LocalStore, job: Job, results: list[ChunkResult]) -> int:
        chunks = job.chunked.chunks
        pauses = [pause_samples(c.boundary, self.settings.audio) for c in chunks]
        gain = programme_gain([r.stats for r in results], pauses, self.settings.audio)
        pieces = (
            (pause, get_pcm(store, chunk_audio_key(job.job_id, c.index)))
            for pause, c in zip(pauses, chunks, strict=True)
        )
        partial = job.output.with_name(f".{job.output.name}.partial")
        try:
            with AudioWriter(
                partial, job.fmt, self.settings.audio.bitrate_kbps, job.title
            ) as writer:
                samples = join_chunks(pieces, gain, writer)
            partial.replace(job.output)
        finally:
            partial.unlink(missing_ok=True)
        return samples
