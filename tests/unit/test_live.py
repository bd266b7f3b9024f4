"""What a live listener hears is the stored chunk: the chunk decoded as its frames arrive equals
it decoded whole (each row computed once, noise keyed by position, no frame lost at either end),
finished piece by piece as ``finish_chunk`` finishes it whole; the simulated engine hands each
frame on as it makes it and admits urgent chunks first."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import OrderedDict

import numpy as np
import pytest

from shared.audio.finish import LiveFinish, finish_chunk
from shared.farm import decoders as decoding
from shared.farm import hearing
from shared.farm.live import Piece
from shared.infra.settings import AudioSettings, Settings
from shared.snac.decoder import SnacDecoder
from shared.snac.noise import PAGE, block_noise
from shared.snac.pace import CONTEXT_FRAMES, Pace
from shared.snac.products import Matrix
from shared.snac.stream import StreamDecoder
from shared.speech.codec import SAMPLES_PER_FRAME, SnacCodes, codes_from_frames
from shared.speech.engine import SpeechRequest
from shared.speech.simulated import SimulatedEngine


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = ((reference - other) ** 2).sum()
    return float("inf") if noise == 0 else float(10 * np.log10((reference**2).sum() / noise))


def random_codes(frames: int, seed: int = 0) -> SnacCodes:
    rng = np.random.default_rng(seed)
    return codes_from_frames(rng.integers(0, 4096, size=(frames, 7)).tolist())


def heard_live(stream: StreamDecoder, seed: int, parts: list[SnacCodes]) -> tuple[np.ndarray, int]:
    """A chunk's ``parts`` fed as they arrive at a listener's pace (four frames a step): the
    samples given, and the frames arrived when the first came."""
    state, pace, pieces, first_at = stream.begin(seed), Pace(step_frames=4), [], 0
    for part in parts:
        due = pace.feed(part)
        if due is not None:
            pieces.append(stream.step(state, *due))
            first_at = first_at or (pace.frames if len(pieces[-1]) else 0)
    due = pace.finish()
    if due is not None:
        pieces.append(stream.step(state, *due))
    return np.concatenate(pieces), first_at


def test_keyed_noise_is_the_same_values_wherever_a_stretch_is_drawn():
    whole = block_noise(7, 2, 0, 5 * PAGE + 17)
    for start, length in ((0, 1), (PAGE - 3, 10), (3 * PAGE + 5, 2 * PAGE), (123, 0)):
        assert np.array_equal(block_noise(7, 2, start, length), whole[start : start + length])
    assert not np.array_equal(block_noise(7, 3, 0, 64), whole[:64])  # another block, other noise
    assert not np.array_equal(block_noise(8, 2, 0, 64), whole[:64])  # another chunk too


@pytest.fixture(scope="module", params=["fp32", "auto"])
def decoders(request, snac_dir) -> tuple[SnacDecoder, StreamDecoder]:
    decoder = SnacDecoder.load(str(snac_dir), products=request.param)
    assert decoder.tiled is not None
    return decoder, StreamDecoder(decoder.tiled)


# How close a chunk heard live comes to the chunk decoded whole, by the products' precision.
# The samples given before they are final (a third of a frame a step, computed as though the
# chunk ended there) are within 85 dB with fp32 products. Narrower products round an input
# that differs by a rounding (the entry's convolution over a slice) to other values: with
# bf16 about as far from the whole decode as that is from the fp32 one (test_decoder.py).
FLOOR_DB = {"fp32": 80, "int16": 55, "bf16": 42}


@pytest.mark.parametrize("arriving", [1, 3, 7, 40])
def test_a_chunk_decoded_as_its_frames_arrive_is_the_chunk_decoded_whole(decoders, arriving):
    decoder, stream = decoders
    codes = random_codes(40, seed=arriving)
    whole = decoder.decode(codes, seed=9)
    parts = [codes.select(np.arange(at, min(at + arriving, 40))) for at in range(0, 40, arriving)]
    live, first_at = heard_live(stream, 9, parts)
    assert len(live) == len(whole) == 40 * SAMPLES_PER_FRAME  # nothing lost at either end
    assert decoder.tiled is not None
    assert snr_db(whole, live) >= FLOOR_DB[decoder.tiled.precision]
    assert first_at == -(-(CONTEXT_FRAMES + 1) // arriving) * arriving  # 3 frames: 21 tokens


def test_each_sample_made_final_as_frames_arrive_is_the_whole_decodes(snac_dir):
    """With fp32 products and nothing given before it is final, the stream is the whole decode
    to float rounding: every stage reads exactly the rows it reads in the whole decode."""
    decoder = SnacDecoder.load(str(snac_dir), products="fp32")
    assert decoder.tiled is not None
    stream = StreamDecoder(decoder.tiled)
    state, pieces = stream.begin(9), []
    codes, at = random_codes(45, seed=4), 0
    for arriving in itertools.cycle([1, 5, 2, 9, 3]):  # whatever the pieces, the same samples
        part = codes.select(np.arange(at, min(at + arriving, codes.frames)))
        at += part.frames
        pcm = stream.step(state, part, None if at == codes.frames else 0)
        pieces.append(pcm)
        if at == codes.frames:
            break
    live, whole = np.concatenate(pieces), decoder.decode(codes, seed=9)
    assert len(live) == len(whole) and np.abs(live - whole).max() < 1e-5


def test_a_frame_heard_live_costs_about_what_it_costs_decoded_whole(decoders, monkeypatch):
    """The products (nearly all of a decode's time) over a chunk heard as its frames arrive,
    four at a time, against the whole decode's: each row once, and per step the look ahead
    before what is final (a sliding window with two frames of context each side: 2×)."""
    decoder, stream = decoders
    work = [0]
    accumulate = Matrix.accumulate

    def counted(matrix: Matrix, x, out):
        work[0] += out.shape[0] * matrix.nbytes  # rows × the weights' size: multiply-adds
        return accumulate(matrix, x, out)

    monkeypatch.setattr(Matrix, "accumulate", counted)
    codes = random_codes(60)
    decoder.decode(codes, seed=1)
    whole, work[0] = work[0], 0
    heard_live(stream, 1, [codes.select(np.array([frame])) for frame in range(codes.frames)])
    assert work[0] / whole < 1.1


def test_a_decoding_process_holds_each_listeners_stream_and_drops_one_left_idle(
    decoders, monkeypatch
):
    _, stream = decoders
    monkeypatch.setattr(decoding, "_snac", stream)
    monkeypatch.setattr(decoding, "_streams", OrderedDict())
    chunks = {"ann": random_codes(12, seed=1), "bob": random_codes(12, seed=2)}
    heard: dict[str, list[np.ndarray]] = {"ann": [], "bob": []}
    for at in range(0, 12, 4):  # two listeners' steps in turn, in one process
        for key, codes in chunks.items():
            until = None if at + 4 == 12 else (at + 2) * SAMPLES_PER_FRAME
            part = codes.select(np.arange(at, at + 4))
            heard[key].append(decoding._step(key, 7, at > 0, part, until))
    for key, codes in chunks.items():  # each the chunk heard alone
        by_itself, _ = heard_live(
            stream, 7, [codes.select(np.arange(at, at + 4)) for at in (0, 4, 8)]
        )
        together = np.concatenate(heard[key])
        # the same products over the same rows; MKL's may round by the arrays' alignment
        assert len(together) == len(by_itself) and np.abs(together - by_itself).max() < 1e-5
    assert not decoding._streams  # both heard to their end: nothing held

    decoding._step("cat", 7, False, chunks["ann"].select(np.arange(4)), 2 * SAMPLES_PER_FRAME)
    later = time.monotonic() + decoding.STREAM_IDLE_S + 1
    monkeypatch.setattr(decoding.time, "monotonic", lambda: later)
    with pytest.raises(hearing.StreamLost):  # its listener stopped reading a minute ago
        decoding._step("cat", 7, True, chunks["ann"].select(np.arange(4, 8)), None)


def test_a_stream_its_decoding_process_dropped_waits_for_the_stored_chunk(monkeypatch):
    async def lost(listener: hearing._Decoding, due) -> np.ndarray:
        raise decoding.StreamLost(listener.key)

    class Reader:
        async def read(self, *args) -> list:
            return [("1-0", Piece(0, 0, codes=random_codes(5)))]

    monkeypatch.setattr(hearing, "_decoders", lambda settings: ("a decoding process",))
    monkeypatch.setattr(hearing._Decoding, "_run", lost)
    chunk = hearing.LiveChunk(Settings(), uuid.uuid4(), 0, seed=7)
    assert asyncio.run(chunk.hear(Reader(), None)) == (True, [])  # type: ignore[arg-type]
    assert chunk.broken  # what follows.py finishes from the stored chunk


def test_a_decoding_process_answers_on_the_event_loop_and_is_started_again_when_it_dies(
    snac_dir,
):
    process = decoding.DecodingProcess(str(snac_dir), "auto")
    assert process.wait_loaded(timeout_s=120)
    codes = random_codes(8)

    async def listen() -> None:
        until = 2 * SAMPLES_PER_FRAME  # as the listener's pace asks after four frames
        first = await process.step("ann", 7, False, codes.select(np.arange(4)), until)
        assert len(first) == until
        process.process.kill()
        process.process.join()
        with pytest.raises(decoding.StreamLost):  # started again, without ann's stream
            await process.step("ann", 7, True, codes.select(np.arange(4, 8)), None)
        assert len(await process.step("bob", 7, False, codes, None)) == 8 * SAMPLES_PER_FRAME

    asyncio.run(listen())
    process.close()


def test_a_chunk_finished_piece_by_piece_is_the_chunk_finished_whole():
    settings = AudioSettings()
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(100, 30000))
        pcm = rng.normal(0, 1e-5, n).astype(np.float32)  # silence, and bursts of sound in it
        for _ in range(rng.integers(0, 4)):
            a = int(rng.integers(0, n))
            b = min(n, a + int(rng.integers(1, 8000)))
            pcm[a:b] = rng.normal(0, 0.1, b - a)
        whole, stats = finish_chunk(pcm, settings)
        if 0 < len(whole) < 2 * round(settings.fade_ms * 24):
            continue  # shorter than two fades: finish_chunk fades it less (LiveFinish.close)
        live = LiveFinish(settings)
        pieces, at = [], 0
        while at < n:
            step = int(rng.integers(1, 5000))
            pieces.append(live.feed(pcm[at : at + step]))
            at += step
        rest, live_stats = live.close()
        joined = np.concatenate([*pieces, rest])
        assert np.array_equal(joined, whole)
        assert live_stats.samples == stats.samples and live_stats.peak == stats.peak
        assert np.array_equal(live_stats.steps, stats.steps)


def test_a_piece_reads_back_as_it_was_written():
    codes = random_codes(3)
    back = Piece.from_fields(
        {k.encode(): _bytes(v) for k, v in Piece(1, 6, codes).fields().items()}
    )
    assert (back.take, back.at) == (1, 6) and back.codes is not None
    assert all(np.array_equal(a, b) for a, b in zip(back.codes.levels, codes.levels, strict=True))
    pcm = np.linspace(-1, 1, 100, dtype=np.float32)
    back = Piece.from_fields(
        {k.encode(): _bytes(v) for k, v in Piece(0, 0, pcm=pcm).fields().items()}
    )
    assert back.pcm is not None and np.array_equal(back.pcm, pcm)
    end = Piece(2, 9, end=True, kept=True).fields()
    back = Piece.from_fields({k.encode(): _bytes(v) for k, v in end.items()})
    assert back.end and back.kept and (back.take, back.at) == (2, 9)


def _bytes(value: object) -> bytes:
    """A field as Redis gives it back."""
    return value if isinstance(value, bytes) else str(value).encode()


def test_the_simulated_engine_hands_on_each_frame_and_admits_urgent_chunks_first():
    engine = SimulatedEngine(max_num_seqs=2, step_s=0.0005, tokens_per_char=1.0, codes=True)
    heard: list[SnacCodes] = []
    started: list[str] = []

    async def run() -> list:
        async def chunk(name: str, urgent: bool = False, listen=None):
            speech = await engine.generate(
                SpeechRequest(name, "x" * 70, "tara", 5, listen=listen, urgent=urgent)
            )
            started.append(name)
            return speech

        books = [asyncio.create_task(chunk(f"book-{i}")) for i in range(4)]
        await asyncio.sleep(0.002)  # two books run, two wait
        urgent = asyncio.create_task(chunk("answer", urgent=True, listen=heard.append))
        return await asyncio.gather(urgent, *books)

    speeches = asyncio.run(run())
    assert started.index("answer") < started.index("book-2")  # ahead of the waiting books
    assert len(heard) == 10 and all(piece.frames == 1 for piece in heard)
    joined = SnacCodes.join(heard)
    assert all(
        np.array_equal(a, b) for a, b in zip(joined.levels, speeches[0].codes.levels, strict=True)
    )


def test_seats_kept_for_urgent_chunks_let_one_in_at_once_behind_a_full_book():
    """Books hold max_num_seqs less the seats; an urgent chunk behind six books starts in the
    step it arrives, where without seats it waits for a book chunk to finish."""
    from shared.speech.seats import EngineSeats

    def first_step_of_answer(seats: int) -> int:
        inner = SimulatedEngine(max_num_seqs=4, step_s=0.0005, tokens_per_char=1.0)
        engine = EngineSeats(inner, 4, seats) if seats else inner

        async def run() -> int:
            books = [
                asyncio.create_task(engine.generate(SpeechRequest(f"b{i}", "x" * 140, "t", i)))
                for i in range(6)
            ]
            await asyncio.sleep(0.003)
            steps_before = len(inner.in_flight)
            await engine.generate(SpeechRequest("answer", "x" * 7, "t", 9, urgent=True))
            steps = len(inner.in_flight) - steps_before  # until the answer was made
            await asyncio.gather(*books)
            return steps

        return asyncio.run(run())

    assert first_step_of_answer(seats=1) <= 8  # its 7 tokens, in the steps it arrived for
    assert first_step_of_answer(seats=0) >= 100  # behind a book chunk's 140 tokens


def test_a_batching_engines_worker_leaves_a_thread_for_each_urgent_seat():
    from shared.infra.settings import Settings
    from shared.speech.seats import book_slots, gpu_concurrency

    simulated = Settings(engine="simulated")
    threads = gpu_concurrency(simulated)
    assert threads == 72  # as compose.yaml's gpu worker: max_num_seqs and an eighth
    window = book_slots(simulated, threads) * simulated.dispatch.window_per_slot
    assert threads - np.ceil(window) >= simulated.orpheus.urgent_seats
    espeak = Settings(engine="espeak")
    assert gpu_concurrency(espeak) == 2 and book_slots(espeak, 2) == 2  # nothing kept
