"""Each request's share of the engine's time: what a chunk cost the GPU.

A batching engine makes many chunks at once, so a chunk's own wall time would count a full
batch's time once per chunk in it. Here the engine's busy time is split, moment by moment,
equally among the requests in it: a request alone in the engine is given all of the time it
took, one of 64 a 64th of it. Summed over the chunks, it is the time the engine had work.
Requests waiting for a seat (``shared.speech.seats``) are not in the engine yet: this wraps
the engine itself, inside the seats.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

from shared.speech.engine import Engine, Speech, SpeechRequest


class EngineClock(Engine):
    """``engine``, its answers carrying their share of its time (``Speech.engine_s``). Used on
    the engine's one event loop, so its bookkeeping needs no lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.name, self.voices = engine, engine.name, engine.voices
        self.shares: dict[int, float] = {}  # each request in the engine: seconds so far
        self.since = time.monotonic()  # when the shares were last brought up to date
        self.ids = itertools.count()

    async def generate(self, request: SpeechRequest) -> Speech:
        key = next(self.ids)
        self._settle()
        self.shares[key] = 0.0
        try:
            speech = await self.engine.generate(request)
        finally:
            self._settle()
            share = self.shares.pop(key)
        return replace(speech, engine_s=share)

    def _settle(self) -> None:
        """Share the time since the last change among the requests in the engine meanwhile."""
        now = time.monotonic()
        if self.shares:
            each = (now - self.since) / len(self.shares)
            for key in self.shares:
                self.shares[key] += each
        self.since = now

    async def aclose(self) -> None:
        await self.engine.aclose()

    def dead(self) -> bool:
        return self.engine.dead()
