"""A gpu worker whose engine dies: ``celery -A tests.e2e.dying_gpu worker -Q gpu …``.

The real worker (workers.app and its tasks) and the real Orpheus engine with the tiny
checkpoint's tokenizer, with one part replaced, the one that cannot run here: the GPU backend.
It behaves as the vLLM backend does when vLLM's engine core dies — every request in flight
fails with EngineDead, later ones fail at once, and it reports itself dead.
``LYRE_TEST_DEATH`` says when:

  batch:N   when N requests are in flight together (mid-batch)
  idle:S    S seconds after its health is first asked, while no request runs (from the
            first question, not from its start: a loaded machine can take seconds to have the
            worker answer at all)
"""

from __future__ import annotations

import asyncio
import os
import time

from shared.infra.settings import get_settings
from shared.speech.codec import END_OF_SPEECH, audio_token
from shared.speech.engine import EngineDead, EngineLoop
from shared.speech.orpheus import OrpheusEngine, Sampling
from workers import engine_host
from workers.app import app

__all__ = ["app"]


class DyingBackend:
    def __init__(self, death: str) -> None:
        kind, _, value = death.partition(":")
        self.batch = int(value) if kind == "batch" else None
        self.idle_s = float(value) if kind == "idle" else None
        self.dies_at: float | None = None  # set when its health is first asked
        self.in_flight = 0
        self.died: asyncio.Event | None = None

    def dead(self) -> bool:
        if self.idle_s is not None:
            if self.dies_at is None:
                self.dies_at = time.monotonic() + self.idle_s
            return time.monotonic() >= self.dies_at
        return self.died is not None and self.died.is_set()

    async def generate_ids(
        self, request_id: str, prompt_ids: list[int], sampling: Sampling, on_ids=None
    ) -> list[int]:
        self.died = self.died or asyncio.Event()
        if self.dead():
            raise EngineDead("engine core died (test)")
        self.in_flight += 1
        if self.in_flight == self.batch:
            self.died.set()
        if self.batch is None:
            return [audio_token(slot, 0) for slot in range(7)] + [END_OF_SPEECH]
        await self.died.wait()  # the batch runs until the engine dies under it
        raise EngineDead("engine core died mid-batch (test)")

    async def aclose(self) -> None:
        pass


def build() -> tuple[EngineLoop, OrpheusEngine]:
    from transformers import AutoTokenizer

    settings = get_settings().orpheus
    tokenizer = AutoTokenizer.from_pretrained(settings.model)
    backend = DyingBackend(os.environ["LYRE_TEST_DEATH"])
    return EngineLoop(), OrpheusEngine(tokenizer, backend, settings)


engine_host._build = build
