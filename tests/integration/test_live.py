"""Live streams through real Redis and Postgres: an interactive job's chunks heard as the engine
makes them, before any is decoded or stored, and the same samples as the stored chunks; a
stream cut short finished from the stored chunk at the sample where it stopped; a book's chunks
never streamed.

The engine is the simulated one making SNAC codes (random, seeded) frame by frame, the decoder
the tiny random SNAC in the real layout: the api's sliding window decodes what the cpu worker
decodes whole."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest
from sqlalchemy import select

from api.schemas import JobCreate
from api.services.jobs import submit as submit_job
from shared.farm.follow import JobAudio
from shared.farm.hearing import start_decoders
from shared.farm.live import live_key, live_publisher
from shared.farm.states import ChunkStatus
from shared.farm.tenants import create_key
from shared.infra import queues
from shared.infra.models import Chunk
from shared.snac.decoder import SnacDecoder
from shared.speech.codec import SAMPLES_PER_FRAME, codes_from_frames
from shared.speech.engine import Speech
from shared.speech.simulated import SimulatedEngine
from tests.burst import BurstFarm
from tests.conftest import services_for

ANSWER = (
    "The keeper climbed the stairs every evening. He trimmed the wick and polished the lens. "
    "Ships passed in the night and never knew his name, but the light was always there."
)


@pytest.fixture()
def live_farm(farm_env, snac_dir):
    env = {**farm_env, "LYRE_ORPHEUS__SNAC_MODEL": str(snac_dir), "LYRE_CHECKS__ENABLED": "0"}
    with services_for(env) as settings:
        farm = BurstFarm(settings)
        farm.engine = SimulatedEngine(64, 0.0005, 5.5, codes=True)
        farm.decoder = SnacDecoder.load(str(snac_dir))
        farm.live = live_publisher(settings)
        yield farm
        farm.close()


def submit(farm: BurstFarm, interactive: bool = True):
    with farm.farm.sessions() as session:
        tenant, _ = create_key(session, "acme")
    body = JobCreate(text=ANSWER, voice="tara", format="mp3", title="answer")
    return submit_job(farm.farm, tenant, body, None, interactive=interactive).id


def heard(farm: BurstFarm, job_id) -> np.ndarray:
    async def listen() -> np.ndarray:
        pieces = [pcm async for pcm in JobAudio(farm.farm, job_id).pcm()]
        return np.concatenate(pieces)

    return asyncio.run(listen())


def statuses(farm: BurstFarm, job_id) -> set[str]:
    with farm.farm.sessions() as session:
        return set(session.scalars(select(Chunk.status).where(Chunk.job_id == job_id)))


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = ((reference - other) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((reference**2).sum() / noise))


def test_a_speech_request_is_heard_before_any_chunk_is_stored_and_sounds_as_stored(live_farm):
    job_id = submit(live_farm)
    live_farm.drain(("generate",))  # the engine has made every chunk; none is decoded
    assert statuses(live_farm, job_id) == {ChunkStatus.GENERATED}
    live = heard(live_farm, job_id)

    live_farm.drain(("decode",))
    assert statuses(live_farm, job_id) == {ChunkStatus.DONE}
    stored = heard(live_farm, job_id)  # every chunk from the object store now
    assert len(live) == len(stored) > 24000
    assert snr_db(stored, live) >= 40


def test_a_stream_cut_short_is_finished_from_the_stored_chunk_where_it_stopped(live_farm):
    job_id = submit(live_farm)
    live_farm.drain(("generate",))
    client = queues.redis_client(live_farm.farm.settings.redis.url, 5)
    prefix = live_farm.farm.settings.redis.key_prefix
    entries = client.xrange(live_key(prefix, job_id, 1))
    for entry, _ in entries[len(entries) // 2 :]:  # the worker died half-way through chunk 1
        client.xdel(live_key(prefix, job_id, 1), entry)

    result: list[np.ndarray] = []
    listener = threading.Thread(target=lambda: result.append(heard(live_farm, job_id)))
    listener.start()
    listener.join(timeout=1.0)
    assert listener.is_alive()  # waiting on chunk 1, whose stream stopped
    live_farm.drain(("decode",))  # the farm stores it
    listener.join(timeout=30)
    stored = heard(live_farm, job_id)
    assert len(result[0]) == len(stored)
    assert snr_db(stored, result[0]) >= 40


def test_a_books_chunks_are_not_streamed(live_farm):
    job_id = submit(live_farm, interactive=False)
    live_farm.drain(("generate",))
    client = queues.redis_client(live_farm.farm.settings.redis.url, 5)
    assert not client.exists(live_key(live_farm.farm.settings.redis.key_prefix, job_id, 0))


def test_a_stream_being_heard_is_followed_without_reading_the_jobs_rows_between_frames(
    live_farm, monkeypatch
):
    """The engine's frames come 85 ms apart, longer than ``speech.poll_s``: a listener waits on
    the stream for them and reads the job's rows only when a chunk begins or ends."""
    job_id = submit(live_farm)
    reads = []
    read = JobAudio._read
    monkeypatch.setattr(JobAudio, "_read", lambda self: reads.append(1) or read(self))
    frames = 12
    codes = codes_from_frames(np.random.default_rng(0).integers(0, 4096, (frames, 7)).tolist())
    take = live_farm.live.listener(job_id, 0, 0)

    begun = threading.Event()

    def engine() -> None:  # chunk 0 as the engine makes it: once heard, a frame every 120 ms
        for frame in range(frames):
            take(codes.select(np.array([frame])))
            if frame >= 3:
                begun.wait(timeout=30)
                time.sleep(0.12)
        take.finish(Speech(codes=codes), kept=True)

    async def first_chunk() -> int:
        audio, samples = JobAudio(live_farm.farm, job_id), 0
        async for pcm in audio.pcm():
            if not samples and len(pcm):  # the api's decoder has started: count from here
                reads.clear()
                begun.set()
            samples += len(pcm)
            if audio.heard:
                return samples
        raise AssertionError("the job ended")

    threading.Thread(target=engine, daemon=True).start()
    assert asyncio.run(first_chunk()) > 0.9 * frames * SAMPLES_PER_FRAME  # trimmed a little
    assert live_farm.farm.settings.speech.poll_s < 0.12
    assert len(reads) <= 1  # as it ended; not one between every two frames


def test_the_api_starts_its_decoders_where_the_farm_makes_snac_codes(farm_env, snac_dir):
    env = {**farm_env, "LYRE_ORPHEUS__SNAC_MODEL": str(snac_dir), "LYRE_ENGINE": "simulated"}
    with services_for(env) as settings:
        assert start_decoders(settings) == ()  # the simulated engine's PCM: nothing to decode
    with services_for({**env, "LYRE_SIMULATED__CODES": "true"}) as settings:
        started = start_decoders(settings)
        assert len(started) == settings.speech.live_decoders
        assert all(process.wait_loaded(timeout_s=120) for process in started)
        for process in started:  # as the api's lifespan ends
            process.close()
        again = start_decoders(settings)  # an api started again in the same process
        assert again == started and all(process.wait_loaded(timeout_s=120) for process in again)
