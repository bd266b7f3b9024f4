"""One chunk heard from its live stream (``shared.farm.live``): its SNAC frames decoded as they
come (``shared.snac.stream``, each row of the decode computed once) and finished as the stored
chunk is (trimmed, faded), so that what is heard is the stored chunk's samples, given out as
soon as they are final.

The SNAC decodes run in the api's decoding processes (``shared.farm.decoders``), started with
the api where the farm's engine makes SNAC codes (else on the first stream that carries
frames); the event loop sends each listener's steps to the process that holds its stream and
awaits the samples. The pace of the steps is ``shared.snac.pace``'s.
"""

from __future__ import annotations

import itertools
import uuid
from functools import cache

import numpy as np

from shared.audio.finish import ChunkStats, LiveFinish
from shared.farm.decoders import DecodingProcess, StreamLost
from shared.farm.live import LiveReader, Piece
from shared.infra.settings import Settings
from shared.snac.pace import Pace
from shared.speech.codec import SnacCodes


@cache
def _processes(count: int, model: str, products: str) -> tuple[DecodingProcess, ...]:
    return tuple(DecodingProcess(model, products) for _ in range(count))


def start_decoders(settings: Settings) -> tuple[DecodingProcess, ...]:
    """Start the decoding processes now, where the farm's engine makes SNAC codes, so that the
    first listener does not wait for one to load its model (5 to 20 s here)."""
    from shared.speech.factory import makes_codes

    if not (settings.speech.live and makes_codes(settings)):
        return ()
    processes = _decoders(settings)
    for process in processes:  # an api started again in one process: those it closed
        process.keep_running()
    return processes


def _decoders(settings: Settings) -> tuple[DecodingProcess, ...]:
    orpheus = settings.orpheus
    return _processes(settings.speech.live_decoders, orpheus.snac_model, orpheus.snac_products)


_turns = itertools.count()  # streams go to the decoding processes in turn


class _Decoding:
    """A listener's decode of one take of a chunk: its pace here, its stream in the decoding
    process that holds it, its steps awaited on the event loop."""

    def __init__(self, settings: Settings, seed: int) -> None:
        processes = _decoders(settings)
        self.process = processes[next(_turns) % len(processes)]
        self.pace = Pace(settings.speech.live_step_frames)
        self.seed, self.key, self.begun = seed, uuid.uuid4().hex, False

    async def feed(self, codes: SnacCodes) -> np.ndarray:
        return await self._run(self.pace.feed(codes))

    async def finish(self) -> np.ndarray:
        return await self._run(self.pace.finish())

    async def _run(self, due: tuple[SnacCodes, int | None] | None) -> np.ndarray:
        if due is None:
            return np.zeros(0, np.float32)
        begun, self.begun = self.begun, True
        return await self.process.step(self.key, self.seed, begun, *due)


class LiveChunk:
    """A chunk's stream, read from the start: call :meth:`hear` until :attr:`done`."""

    def __init__(self, settings: Settings, job_id: uuid.UUID, index: int, seed: int) -> None:
        self.settings, self.job_id, self.index, self.seed = settings, job_id, index, seed
        self.after = "0"  # the last entry read
        self.take: int | None = None  # the take followed
        self.at = 0  # its frames or samples read
        self.ended = False  # its end read (not kept: the next take is awaited)
        self.broken = False  # a piece was missed: only the stored chunk can finish it
        self.done: ChunkStats | None = None  # the stats of all of it, once heard to its end
        self.finish = LiveFinish(settings.audio)
        self.decoding: _Decoding | None = None  # made on the take's first frames

    @property
    def samples(self) -> int:
        """Samples of the finished chunk heard so far."""
        return self.finish.samples

    async def hear(self, reader: LiveReader, wait_s: float | None) -> tuple[bool, list[np.ndarray]]:
        """Whether any piece came (within ``wait_s``; None: only those already there), and the
        finished chunk's samples they made final."""
        entries = await reader.read(self.job_id, self.index, self.after, wait_s)
        if not entries:
            return False, []
        self.after = entries[-1][0]
        out = []
        for piece in _joined([p for _, p in entries]):
            if self.broken or self.done is not None:
                break
            try:
                pcm = await self._piece(piece)
            except StreamLost:
                self.broken = True
                break
            if len(pcm):
                out.append(pcm)
        return True, out

    async def _piece(self, piece: Piece) -> np.ndarray:
        if self.take != piece.take:
            if self.take is not None and not self.ended:  # a take cut short: not ours to mend
                self.broken = True
                return np.zeros(0, np.float32)
            self._restart(piece.take)
        if piece.at != self.at:  # pieces lost on the way (a cut stream, a trimmed one)
            self.broken = True
            return np.zeros(0, np.float32)
        if piece.end:
            self.ended = True
            return await self._end() if piece.kept else np.zeros(0, np.float32)
        if piece.codes is not None:
            self.at += piece.codes.frames
            if self.decoding is None:
                self.decoding = _Decoding(self.settings, self.seed)
            return self.finish.feed(await self.decoding.feed(piece.codes))
        assert piece.pcm is not None
        self.at += len(piece.pcm)
        return self.finish.feed(piece.pcm)

    def _restart(self, take: int) -> None:
        """Follow ``take`` from its start (a take the checks refused is heard again, redone)."""
        self.take, self.at, self.ended = take, 0, False
        self.finish, self.decoding = LiveFinish(self.settings.audio), None

    async def _end(self) -> np.ndarray:
        tail = np.zeros(0, np.float32)
        if self.decoding is not None:
            tail = await self.decoding.finish()
        final = self.finish.feed(tail)
        rest, self.done = self.finish.close()
        return np.concatenate([final, rest])


def _joined(pieces: list[Piece]) -> list[Piece]:
    """Runs of one take's frames read together as one piece: a stream read behind the engine
    (the listener still hearing an earlier chunk) is decoded in one window, not a window per
    frame."""
    out: list[Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if (
            last is not None
            and last.codes is not None
            and piece.codes is not None
            and piece.take == last.take
            and piece.at == last.at + last.codes.frames
        ):
            out[-1] = Piece(last.take, last.at, codes=SnacCodes.join([last.codes, piece.codes]))
        else:
            out.append(piece)
    return out
