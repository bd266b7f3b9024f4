"""Embedded mode: the farm's stage functions in one process, a thread pool for the queues,
SQLite (same schema, same migrations) for Postgres and a local folder for S3."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cli.resume import resume
from shared.audio import SAMPLE_RATE
from shared.farm import stages
from shared.farm.book_stitch import stitch_job
from shared.farm.chapter_stitch import stitch_chapter
from shared.farm.checked import chunk_wav
from shared.farm.context import FarmContext
from shared.farm.dispatch import dispatch
from shared.farm.intake import InputRefused, Intake, enter_job
from shared.farm.library import write_folder
from shared.farm.outputs import chapter_progress
from shared.farm.redo import ChunkNotFound, TextTooLong, redo_chunk
from shared.farm.states import JobStatus
from shared.infra.db import bookkeeping_scope, migrate, session_scope
from shared.infra.models import Chunk, Job, Tenant
from shared.infra.settings import Settings
from shared.infra.storage import LocalStore
from shared.speech.engine import Engine, EngineError, EngineLoop
from shared.speech.factory import build_engine

if TYPE_CHECKING:
    from shared.snac.decoder import SnacDecoder

LOCAL_TENANT = "local"


@dataclass
class Summary:
    engine: str
    chunks: int
    audio_seconds: float
    wall_seconds: float
    warnings: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # output name -> where it lies (and
    # "library": the book's folder in the library)
    chapters: list[dict[str, Any]] = field(default_factory=list)  # as the job's JSON has them
    resumed_chunks: int = 0  # done before this run

    @property
    def real_time_factor(self) -> float:
        """Wall time per second of audio: below 1 is faster than real time."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds else float("inf")


@dataclass(frozen=True)
class ChunkRedo:
    """One chunk of a finished run made again (``--redo-chunk``): its next take, or
    corrected words, or another voice."""

    index: int
    text: str | None = None
    voice: str | None = None


class RedoRefused(Exception):
    """A chunk cannot be redone here (no finished run of this input, no such chunk, a text of
    more than one chunk): the message says why."""


@dataclass
class SynthJob:
    intake: Intake  # its engine is the runner's
    output: Path  # the programme
    extras: Path | None = None  # a folder for the other files (chapters, captions); or none
    redo: ChunkRedo | None = None  # a chunk of the finished run in the work folder, again
    library: Path | None = None  # a library's folder, to shelve the book in (Author/Title/)

    @property
    def job_id(self) -> uuid.UUID:
        """The same for the same text, voice, making and seed (``Intake.content_id``)."""
        return self.intake.content_id()


EVERY_CHUNK = 1 << 30  # embedded mode's window: a job has no one to share the engine with


class LocalSender:
    """The queues of embedded mode: each message runs its stage on the thread pool."""

    farm: FarmContext  # set once the farm that owns this sender is built

    def __init__(
        self, pool: ThreadPoolExecutor, runner: EmbeddedRunner, on_decoded: Callable[[int], None]
    ) -> None:
        self.pool, self.runner, self.on_decoded = pool, runner, on_decoded
        self._pending = 0
        self._idle = threading.Condition()
        self.error: BaseException | None = None

    def _submit(self, stage: Callable[[], object]) -> None:
        with self._idle:
            self._pending += 1
        future: Future = self.pool.submit(stage)
        future.add_done_callback(self._finished)

    def _finished(self, future: Future) -> None:
        with self._idle:
            if future.exception() and self.error is None:
                self.error = future.exception()
            self._pending -= 1
            self._idle.notify_all()

    def wait(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)

    def generate(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        loop, engine = self.runner.loop, self.runner.engine
        self._submit(lambda: stages.generate_chunk(self.farm, loop, engine, job_id, index))

    def decode(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        def run() -> None:
            if stages.decode_chunk(self.farm, self.runner.decoder, job_id, index):
                self.on_decoded(index)
            else:  # a take that failed its checks went back to be made again: send it
                dispatch(self.farm, slots=EVERY_CHUNK)

        self._submit(run)

    def stitch_chapter(self, job_id: uuid.UUID, chapter: int, urgent: bool = False) -> None:
        self._submit(lambda: stitch_chapter(self.farm, job_id, chapter))

    def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None:
        self._submit(lambda: stitch_job(self.farm, job_id))

    def deliver(self, delivery_id: str, delay_s: float = 0) -> None:
        pass  # embedded jobs have no webhook

    def window_lost(self) -> bool:
        return False  # the pool's queue lives and dies with this process


def snac_decoder(settings: Settings) -> SnacDecoder:
    """SNAC, and torch with one thread: one core per chunk in flight, as the pool uses every
    core. Only an engine that makes codes needs it (torch takes a second to import)."""
    import torch

    from shared.snac.decoder import SnacDecoder

    torch.set_num_threads(1)
    return SnacDecoder.from_settings(settings.orpheus)


class EmbeddedRunner:
    def __init__(self, settings: Settings, engine_name: str) -> None:
        self.settings = settings
        self.engine_name = engine_name
        self.engine: Engine = build_engine(settings, engine_name)
        self.decoder = snac_decoder(settings) if engine_name == "orpheus" else None
        self.loop = EngineLoop()
        self.workers = os.cpu_count() or 1

    def close(self) -> None:
        self.loop.run(self.engine.aclose())
        self.loop.close()

    def run(self, job: SynthJob, on_chunk: Callable[[int], None] = lambda _: None) -> Summary:
        started = time.perf_counter()
        with ExitStack() as stack:
            work_dir = self.settings.work_dir or Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="lyre-"))
            )
            Path(work_dir).mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{Path(work_dir).resolve() / 'lyre.db'}"
            migrate(url)
            pool = stack.enter_context(ThreadPoolExecutor(self.workers, "lyre-stage"))
            sender = LocalSender(pool, self, on_chunk)
            store = LocalStore(Path(work_dir))
            farm = FarmContext(
                self.settings,
                store,
                sender,
                partial(session_scope, url),
                partial(bookkeeping_scope, url),
            )
            sender.farm = farm
            resumed = resume(farm, job.job_id)
            if job.redo is not None:
                self._redo(farm, job.job_id, job.redo, resumed)
            elif resumed is None:
                self._submit(farm, job)
            for index in resumed or []:
                on_chunk(index)
            sender.wait()
            with farm.sessions() as session:
                row = session.get(Job, job.job_id)
                chapters = chapter_progress(farm, session, [job.job_id])[job.job_id]
            if sender.error is not None or row is None or row.status != JobStatus.SUCCEEDED:
                reason = sender.error or (row.error if row else "the job vanished")
                raise EngineError(f"synthesis failed: {reason}")
            files = self._deliver(store, row, job.output, job.extras)
            if job.extras is not None:
                files |= self._suspects(store, row, chapters, job.extras)
            if job.library is not None:
                files["library"] = write_folder(farm, row, job.library)
            return Summary(
                self.engine_name,
                row.chunks_total,
                (row.output_samples or 0) / SAMPLE_RATE,
                time.perf_counter() - started,
                list(row.warnings.get("messages", [])) + self._dropped(url, job),
                files,
                chapters,
                len(resumed or []),
            )

    @staticmethod
    def _deliver(store: LocalStore, row: Job, output: Path, extras: Path | None) -> dict[str, Path]:
        """The programme to ``output``; every other file into ``extras``."""
        files = {}
        for made in row.outputs:
            name = made["key"].rsplit("/", 1)[-1]
            if made["kind"] != "programme" and extras is None:
                continue
            target = output if made["kind"] == "programme" else (extras or output.parent) / name
            shutil.copyfile(store.path(made["key"]), target)
            files[name] = target
        return files

    @staticmethod
    def _suspects(
        store: LocalStore, row: Job, chapters: list[dict[str, Any]], extras: Path
    ) -> dict[str, Path]:
        """Each suspect chunk's audio as WAV in ``extras`` (``suspect-chunk-NNNN.wav``), to
        listen to before redoing it."""
        files = {}
        for chapter in chapters:
            for suspect in (chapter["checks"] or {}).get("suspects", []):
                name = f"suspect-chunk-{suspect['chunk']:04d}.wav"
                (extras / name).write_bytes(chunk_wav(store, str(row.id), suspect["chunk"]))
                files[name] = extras / name
        return files

    def _submit(self, farm: FarmContext, job: SynthJob) -> None:
        with farm.sessions() as session:
            tenant_id = session.scalar(select(Tenant.id).where(Tenant.name == LOCAL_TENANT))
            if tenant_id is None:
                tenant = Tenant(name=LOCAL_TENANT, webhook_secret="")
                session.add(tenant)
                session.flush()
                tenant_id = tenant.id
        request = job.intake.for_job(job.job_id)
        # a failed earlier run's rows go
        enter_job(farm, tenant_id, job.job_id, job.intake, request, replace=True)
        dispatch(farm, slots=EVERY_CHUNK)  # one job, no one to share with: all at once

    @staticmethod
    def _redo(
        farm: FarmContext, job_id: uuid.UUID, redo: ChunkRedo, resumed: list[int] | None
    ) -> None:
        """Start the redo of one chunk of the finished run of this input (the farm's
        ``redo_chunk``): its chapter's file and the book's are made again from the chunks."""
        with farm.sessions() as session:
            status = session.scalar(select(Job.status).where(Job.id == job_id))
        if status != JobStatus.SUCCEEDED:
            raise RedoRefused(
                "no finished run of this input in LYRE_WORK_DIR to redo a chunk of: "
                "run it first, with the same arguments and LYRE_WORK_DIR"
            )
        try:
            redo_chunk(farm, job_id, redo.index, redo.text, redo.voice)
        except (ChunkNotFound, TextTooLong, InputRefused) as exc:
            raise RedoRefused(str(exc) or f"the run has no chunk {redo.index}") from None
        if resumed is not None and redo.index in resumed:
            resumed.remove(redo.index)  # its progress is this run's
        dispatch(farm, slots=EVERY_CHUNK)

    @staticmethod
    def _dropped(url: str, job: SynthJob) -> list[str]:
        with session_scope(url) as session:
            counts = session.scalars(
                select(Chunk.dropped_tokens).where(Chunk.job_id == job.job_id)
            ).all()
        dropped = sum(count or 0 for count in counts)
        return [f"dropped {dropped} invalid audio token(s)"] if dropped else []
