"""A gpu worker whose engine dies: ``celery -A tests.e2e.dying_gpu worker -Q gpu …``.

The real worker (workers.app with its tasks) with one thing replaced, the one that cannot run
here: the GPU engine. It behaves as vLLM's AsyncLLM does when its engine core dies — every
request in flight fails with the engine-dead error, later ones fail at once, and the engine
reports itself dead. ``LYRE_TEST_DEATH`` says when:

  batch:N   when N requests are in flight together (mid-batch)
  idle:S    S seconds after it is built, while no request runs
"""

from __future__ import annotations

import asyncio
import os
import time

import numpy as np

from shared.engines.base import Engine, EngineDead, EngineLoop, Speech, SpeechRequest
from shared.voices import VOICES
from workers import engine_host
from workers.app import app

__all__ = ["app"]


class DyingEngine(Engine):
    name, voices = "dying", VOICES

    def __init__(self, death: str) -> None:
        kind, _, value = death.partition(":")
        self.batch = int(value) if kind == "batch" else None
        self.dies_at = time.monotonic() + float(value) if kind == "idle" else None
        self.in_flight = 0
        self.died: asyncio.Event | None = None

    def dead(self) -> bool:
        if self.dies_at is not None:
            return time.monotonic() >= self.dies_at
        return self.died is not None and self.died.is_set()

    async def generate(self, request: SpeechRequest) -> Speech:
        self.died = self.died or asyncio.Event()
        if self.dead():
            raise EngineDead("engine core died (test)")
        self.in_flight += 1
        if self.in_flight == self.batch:
            self.died.set()
        if self.batch is None:
            return Speech(pcm=np.zeros(2400, np.float32))
        await self.died.wait()  # the batch runs until the engine dies under it
        raise EngineDead("engine core died mid-batch (test)")


engine_host._build = lambda: (EngineLoop(), DyingEngine(os.environ["LYRE_TEST_DEATH"]))
