"""The chunk stages: generate (GPU) and decode (CPU). Celery tasks in ``workers/`` are a few lines
around these, and embedded mode runs them on a thread pool.

Each stage takes ids, claims its chunk (``shared.farm.transitions``), does its slow work outside
any transaction, and moves the chunk by its edge; a redelivered or duplicated message does no
harm, since only the first to move the chunk goes on. The stitches are ``chapter_stitch`` and
``book_stitch``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import Row

from shared.audio.finish import finish_chunk
from shared.audio.tempo import TimeStretch
from shared.checks.audio import check_audio
from shared.checks.speech import Verdict, check_speech
from shared.farm import stage_ends
from shared.farm.checked import takes_made
from shared.farm.context import FarmContext
from shared.farm.leases import RENEW_CHUNK_LEASE, Lease
from shared.farm.live import LivePublisher, TakeListener
from shared.farm.seeds import chunk_seed, take_seed
from shared.farm.states import JobStatus
from shared.farm.transitions import (
    CHUNK_GENERATED_TO_PENDING,
    CLAIM_GENERATED_CHUNK,
    CLAIM_PENDING_CHUNK,
    LEASE_COMPLETE_CHAPTER,
    move_job,
)
from shared.infra import queues
from shared.infra.db import notify_at_commit
from shared.infra.models import utcnow
from shared.infra.storage import chunk_audio_key, put_pcm
from shared.speech.engine import Engine, EngineLoop, Speech, SpeechRequest

if TYPE_CHECKING:  # torch stays out of processes that never decode (api, stitch)
    from shared.snac.decoder import SnacDecoder


class SpeechMissing(RuntimeError):
    """A generated chunk has no speech stored."""


class MissingDecoder(Exception):
    """The engine produced SNAC codes but no SNAC decoder was loaded."""


def _claim(farm: FarmContext, job_id: uuid.UUID, index: int, claim: Any) -> Row[Any] | None:
    """Run a claim statement on a chunk; its row, or None if the chunk is not ours."""
    params = {"job": job_id, "idx": index, "lease": farm.lease(), "at": utcnow()}
    with farm.bookkeeping() as connection:
        return connection.execute(claim, params).one_or_none()


def generate_chunk(
    farm: FarmContext,
    loop: EngineLoop,
    engine: Engine,
    job_id: uuid.UUID,
    index: int,
    urgent: bool = False,
    live: LivePublisher | None = None,
) -> bool:
    """GPU stage: the chunk's text to speech (SNAC codes, or PCM), kept in its row; then the
    chunk goes to decode (ahead of books' chunks if it was sent ``urgent``, a short job's, and
    inside the engine ahead of them where it can). An interactive job's chunk is published to
    ``live`` as it is made."""
    claimed = _claim(farm, job_id, index, CLAIM_PENDING_CHUNK)
    if claimed is None:
        return False
    job_status, text, voice = claimed[0], claimed.text, claimed.voice
    if job_status == JobStatus.QUEUED:
        with farm.sessions() as session:
            move_job(session, job_id, JobStatus.RUNNING)  # the first chunk starts the job
    seed = chunk_seed(job_id, index, claimed.job_seed)
    started = time.perf_counter()
    heard = None
    if live is not None and claimed.job_interactive:
        heard = partial(live.listener, job_id, index)
    # renewed while the engine works: a chunk longer than a lease is not sent to a second one
    with Lease(farm, RENEW_CHUNK_LEASE, job=job_id, idx=index, at=claimed.taken_at):
        request = SpeechRequest(f"{job_id}-{index}", text, voice, seed, urgent=urgent)
        kept = make_takes(farm, loop, engine, request, claimed, heard)
    speech = kept.speech
    generated = {
        "job": job_id,
        "idx": index,
        "output": speech.to_bytes(),
        "n_dropped": speech.codes.dropped_tokens if speech.codes else 0,
        "seconds": time.perf_counter() - started,
        "engine_share": kept.engine_s,
        "lease": farm.lease(),
        "take": kept.take,
        "takes": kept.takes,
        "suspect": kept.suspect,
    }
    with farm.bookkeeping() as connection:  # the dispatcher woken: its place is free
        moved = stage_ends.generated(connection, generated)
    if moved:
        farm.send.decode(job_id, index, urgent=urgent)
    return moved


def takes_left(takes: list[dict[str, Any]], limit: int) -> int:
    """How many more takes a chunk may have, ``takes`` checked of ``limit`` (a redo of the
    chunk starts its count afresh)."""
    return limit - takes_made(takes)


@dataclass(frozen=True)
class Kept:
    """The take a chunk keeps, with the findings of every take checked so far."""

    speech: Speech
    take: int
    takes: list[dict[str, Any]]
    suspect: str | None  # why it failed, where every take did
    engine_s: float  # its takes' share of the engine's time


def make_takes(
    farm: FarmContext,
    loop: EngineLoop,
    engine: Engine,
    chunk: SpeechRequest,
    claimed: Row[Any],
    heard: Callable[[int], TakeListener] | None = None,
) -> Kept:
    """Generate the chunk's takes from its next one (``claimed.take``) until one passes the
    checks that need no decode (``shared.checks.speech``), or the takes run out and the best
    is kept, suspect. Every take's seed follows from the chunk's: reruns take alike. Each take
    is heard live where ``heard`` gives its listener, and ended as kept or not."""
    checks, silence = farm.settings.checks, farm.settings.audio.silence_threshold_dbfs
    takes = list(claimed.takes or [])
    best: tuple[float, int, Speech, Verdict] | None = None
    first, engine_s = claimed.take, 0.0
    for take in range(first, first + max(1, takes_left(takes, checks.takes))):
        listener = None if heard is None else heard(take)
        speech = loop.run(engine.generate(_take(chunk, take, listener)))
        if not checks.enabled:
            if listener is not None:
                listener.finish(speech, kept=True)
            return Kept(speech, take, takes, None, engine_s + speech.engine_s)
        engine_s += speech.engine_s
        verdict = check_speech(speech, chunk.text, engine.name, chunk.voice, checks, silence)
        if listener is not None:
            listener.finish(speech, kept=verdict.passed)
        takes.append({"take": take, "stage": "generate", "reasons": list(verdict.reasons)})
        if verdict.passed:
            return Kept(speech, take, takes, None, engine_s)
        if best is None or verdict.score < best[0]:
            best = (verdict.score, take, speech, verdict)
    assert best is not None
    _, take, speech, verdict = best
    return Kept(speech, take, takes, "; ".join(verdict.reasons), engine_s)


def _take(chunk: SpeechRequest, take: int, listener: TakeListener | None) -> SpeechRequest:
    """The request for one take of the chunk: its own id (an engine's ids are unique) and
    seed."""
    request_id = chunk.request_id if take == 0 else f"{chunk.request_id}.{take}"
    seed = take_seed(chunk.seed, take)
    return replace(chunk, request_id=request_id, seed=seed, take=take, listen=listener)


def decode_chunk(
    farm: FarmContext,
    decoder: SnacDecoder | None,
    job_id: uuid.UUID,
    index: int,
    urgent: bool = False,
) -> bool:
    """CPU stage: the chunk's speech to finished PCM in the object store and its loudness in
    the row; the decode that finishes a chapter's last chunk sends the chapter's stitch (ahead
    of books' if ``urgent``)."""
    claimed = _claim(farm, job_id, index, CLAIM_GENERATED_CHUNK)
    if claimed is None:
        return False
    if claimed.speech is None:  # the task retries, and fails the job when out of attempts
        raise SpeechMissing(f"chunk {index} of job {job_id}")
    started, cpu = time.perf_counter(), partial(_cpu_s, claimed, time.thread_time())
    seed = chunk_seed(job_id, index, claimed.job_seed)
    pcm = _pcm(Speech.from_bytes(claimed.speech), decoder, seed)
    judged = _judge(farm, job_id, index, claimed, pcm, cpu)
    if judged is None:  # sent back for its next take
        return False
    takes, suspect = judged
    if claimed.rate is not None:  # SSML's <prosody rate>
        stretch = TimeStretch(claimed.rate)
        pcm = np.concatenate([stretch.process(pcm), stretch.flush()])
    pcm, stats = finish_chunk(pcm, farm.settings.audio)
    decode_s = time.perf_counter() - started
    put_pcm(farm.store, chunk_audio_key(str(job_id), index), pcm)
    done = {
        "job": job_id,
        "idx": index,
        "n": stats.samples,
        "peak": stats.peak,
        "energy": stats.energy,
        "steps": stats.stored_steps(),
        "at": utcnow(),
        "seconds": decode_s,
        "lease": farm.lease(),
        "takes": takes or None,
        "suspect": suspect,
        "engine_share": claimed.engine_s or 0.0,
        "cpu": cpu(),
        "bytes": pcm.nbytes,  # the chunk's object
    }
    with farm.bookkeeping() as connection:
        moved, full = stage_ends.decoded(connection, done)
    if not (moved and full):  # a chapter not yet full: no stitch to lease (the reconciler
        return moved  # leases one whose count went wrong, once its lease is found missing)
    # after the commit above: of two decodes finishing a chapter at once, the later sees both
    with farm.bookkeeping() as connection:
        chapter = connection.execute(LEASE_COMPLETE_CHAPTER, done).scalar()
    if chapter is not None:
        farm.send.stitch_chapter(job_id, chapter, urgent=urgent)
    return True


def check_decoded(farm: FarmContext, pcm: np.ndarray, text: str) -> Verdict | None:
    """The checks a take's decoded audio gets (None: checks are off): no long silence inside,
    and, where the operator asked for it, its transcript against its text."""
    checks = farm.settings.checks
    if not checks.enabled:
        return None
    threshold = farm.settings.audio.silence_threshold_dbfs
    verdict = check_audio(pcm, threshold, checks)
    if checks.transcribe and verdict.passed:  # a silent take needs no listening to
        from shared.checks.transcript import check_words, transcriber

        verdict += check_words(transcriber(checks.whisper_model), pcm, text, checks.max_wer)
    return verdict


def _cpu_s(claimed: Row[Any], since: float) -> float:
    """The chunk's decodes' CPU seconds: the takes' before, and this one's since ``since``."""
    return (claimed.decode_cpu_s or 0.0) + time.thread_time() - since


def _judge(
    farm: FarmContext,
    job_id: uuid.UUID,
    index: int,
    claimed: Row[Any],
    pcm: np.ndarray,
    cpu: Callable[[], float],
) -> tuple[list[dict[str, Any]], str | None] | None:
    """The decoded take's findings added to the chunk's, and why it is suspect if it is; or
    None where it failed with takes left, and the chunk went back to the dispatcher for the
    next (a decode that fails the last take keeps it: its codes passed their checks)."""
    takes, suspect = list(claimed.takes or []), claimed.suspect
    verdict = check_decoded(farm, pcm, claimed.text)
    if verdict is None:
        return takes, suspect
    takes.append({"take": claimed.take, "stage": "decode", "reasons": list(verdict.reasons)})
    if verdict.passed:
        return takes, suspect
    if suspect is None and takes_left(takes, farm.settings.checks.takes) > 0:
        params = {"job": job_id, "idx": index, "take": claimed.take + 1, "takes": takes}
        params["cpu"] = cpu()
        with farm.bookkeeping() as connection:
            if connection.execute(CHUNK_GENERATED_TO_PENDING, params).rowcount:
                notify_at_commit(connection, queues.DISPATCH_CHANNEL)
        return None
    return takes, "; ".join(filter(None, [suspect, *verdict.reasons]))


def _pcm(speech: Speech, decoder: SnacDecoder | None, seed: int) -> np.ndarray:
    """The chunk's raw PCM: its SNAC codes decoded, or the PCM an engine made directly."""
    if speech.codes is not None:
        if decoder is None:
            raise MissingDecoder(MissingDecoder.__doc__)
        return decoder.decode(speech.codes, seed)
    return speech.pcm if speech.pcm is not None else np.zeros(0, np.float32)
