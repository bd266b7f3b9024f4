"""The engine interface: one request per chunk, SNAC codes or PCM back."""

from __future__ import annotations

import asyncio
import io
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from shared.speech.codec import SnacCodes

T = TypeVar("T")

# Called with each piece of a chunk's speech as the engine makes it (SNAC frames, or PCM at
# SAMPLE_RATE), on the engine's loop or a thread of the engine's: it must return at once.
Listener = Callable[[SnacCodes | np.ndarray], None]


class EngineError(Exception):
    """The speech engine could not be loaded or failed on a request."""


class EngineDead(EngineError):
    """The speech engine died: no request in this process can succeed until it is restarted."""


@dataclass(frozen=True)
class SpeechRequest:
    request_id: str  # unique per chunk, e.g. "<job>-<chunk index>"
    text: str
    voice: str
    seed: int  # sampling seed, so that a retried chunk can be reproduced where the backend allows
    take: int = 0  # which take of the chunk this is: 0 first, then after failed checks
    # someone is listening as it is made (a speech request): its pieces as they come
    listen: Listener | None = field(default=None, compare=False)
    urgent: bool = False  # ahead of books inside the engine, where the engine can do that


@dataclass(frozen=True)
class Speech:
    """What an engine made for one chunk: SNAC codes to decode, or finished PCM."""

    codes: SnacCodes | None = None
    pcm: np.ndarray | None = None  # float32 mono at SAMPLE_RATE
    tokens: int = 0  # tokens generated (0 for engines that make PCM directly)
    ended: bool = True  # the model said end-of-speech before its token budget ran out
    engine_s: float = 0.0  # its share of the engine's time (shared.speech.metering); not stored

    def to_bytes(self) -> bytes:
        """The speech as an ``.npz`` archive (a few KB of codes), kept in the chunk's row from
        generation until decode."""
        buffer = io.BytesIO()
        if self.codes is not None:
            c = self.codes
            meta = np.array([c.dropped_tokens, c.partial_frames, self.tokens, int(self.ended)])
            np.savez(buffer, l0=c.levels[0], l1=c.levels[1], l2=c.levels[2], meta=meta)
        else:
            pcm = self.pcm if self.pcm is not None else np.zeros(0, np.float32)
            np.savez(buffer, pcm=pcm.astype(np.float32))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Speech:
        with np.load(io.BytesIO(data)) as z:
            if "pcm" in z:
                return cls(pcm=z["pcm"])
            dropped, partial, tokens, *ended = (int(v) for v in z["meta"])
            codes = SnacCodes((z["l0"], z["l1"], z["l2"]), dropped, partial)
            return cls(codes=codes, tokens=tokens, ended=bool(ended[0]) if ended else True)


class Engine(ABC):
    """A speech engine. ``generate`` is a coroutine so that one engine can serve many chunks
    concurrently (continuous batching in vLLM); call it from threads through an EngineLoop."""

    name: str
    voices: tuple[str, ...]

    @abstractmethod
    async def generate(self, request: SpeechRequest) -> Speech: ...

    async def aclose(self) -> None:  # noqa: B027 - most engines hold nothing to release
        """Release the engine's resources (on the loop that ran it)."""

    def dead(self) -> bool:
        """Whether the engine died for good (only an in-process GPU engine can)."""
        return False


class EngineLoop:
    """An event loop on its own thread, shared by every thread that submits chunks.

    Worker threads call :meth:`run` and block on the result while the loop interleaves all
    in-flight requests; this is what keeps a vLLM engine's batch full. Never ``asyncio.run``
    per chunk: that would create a new loop and lose the engine's state.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="engine-loop", daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()
