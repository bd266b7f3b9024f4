"""One chunk heard from its live stream (``shared.farm.live``): its pieces decoded in a sliding
window (SNAC frames) and finished as the stored chunk is (trimmed, faded), so that what is
heard is the stored chunk's samples, given out as soon as they are final.

The decoding runs on a thread of its own (``speech.live_decoders`` of them per process), so
that an api decoding streams still answers its other requests from its event loop and
thread pool.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

from shared.audio.finish import ChunkStats, LiveFinish
from shared.farm.live import LiveReader, Piece
from shared.infra.settings import Settings
from shared.speech.codec import SnacCodes

if TYPE_CHECKING:  # torch only where a stream carries SNAC frames
    from shared.snac.decoder import SnacDecoder
    from shared.snac.window import WindowDecoder


@cache
def _decoding(threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="live-decode")


_decoder_lock = threading.Lock()  # one load, whichever decoding thread asks first


@cache
def _snac(model: str, path: str, products: str) -> SnacDecoder:
    import torch

    from shared.snac.decoder import SnacDecoder

    torch.set_num_threads(1)  # one core per decoding thread: the api's other work goes on
    return SnacDecoder.load(model, "cpu", path, products)  # type: ignore[arg-type]


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
        self.window: WindowDecoder | None = None

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
        loop = asyncio.get_running_loop()
        pool = _decoding(self.settings.speech.live_decoders)
        out = await loop.run_in_executor(pool, self._take_in, [p for _, p in entries])
        return True, out

    def _take_in(self, pieces: list[Piece]) -> list[np.ndarray]:
        out = []
        for piece in _joined(pieces):
            if self.broken or self.done is not None:
                break
            pcm = self._piece(piece)
            if len(pcm):
                out.append(pcm)
        return out

    def _piece(self, piece: Piece) -> np.ndarray:
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
            return self._end() if piece.kept else np.zeros(0, np.float32)
        if piece.codes is not None:
            self.at += piece.codes.frames
            return self.finish.feed(self._window().feed(piece.codes))
        assert piece.pcm is not None
        self.at += len(piece.pcm)
        return self.finish.feed(piece.pcm)

    def _restart(self, take: int) -> None:
        """Follow ``take`` from its start (a take the checks refused is heard again, redone)."""
        self.take, self.at, self.ended = take, 0, False
        self.finish, self.window = LiveFinish(self.settings.audio), None

    def _end(self) -> np.ndarray:
        tail = self.window.finish() if self.window is not None else np.zeros(0, np.float32)
        final = self.finish.feed(tail)
        rest, self.done = self.finish.close()
        return np.concatenate([final, rest])

    def _window(self) -> WindowDecoder:
        if self.window is None:
            from shared.snac.window import WindowDecoder

            orpheus = self.settings.orpheus
            with _decoder_lock:
                decoder = _snac(orpheus.snac_model, orpheus.snac_decoder, orpheus.snac_products)
            self.window = WindowDecoder(decoder, self.seed, self.settings.speech.live_step_frames)
        return self.window


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
