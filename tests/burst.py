"""Run the farm's stages in this process, draining their messages until none is left (like
arq's burst worker): deterministic tests of the stage logic with the real database and S3."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

from shared import farm as stages
from shared.db import bookkeeping_scope, session_scope
from shared.engines import build_engine
from shared.engines.base import EngineLoop
from shared.settings import Settings
from shared.storage import S3Store


@dataclass
class BurstDispatch:
    messages: deque = field(default_factory=deque)
    sent: list = field(default_factory=list)

    def _send(self, *message) -> None:
        self.messages.append(message)
        self.sent.append(message)

    def generate(self, job_id: uuid.UUID, index: int) -> None:
        self._send("generate", job_id, index)

    def decode(self, job_id: uuid.UUID, index: int) -> None:
        self._send("decode", job_id, index)

    def stitch(self, job_id: uuid.UUID) -> None:
        self._send("stitch", job_id)

    def deliver(self, delivery_id: str, delay_s: float = 0) -> None:
        self._send("deliver", delivery_id)


class BurstFarm:
    def __init__(self, settings: Settings) -> None:
        self.dispatch = BurstDispatch()
        self.farm = stages.Farm(
            settings, S3Store(settings.storage), self.dispatch, session_scope, bookkeeping_scope
        )
        self.loop = EngineLoop()
        self.engine = build_engine(settings, "espeak")

    def step(self) -> tuple:
        message = self.dispatch.messages.popleft()
        kind, *args = message
        if kind == "generate":
            stages.generate_chunk(self.farm, self.loop, self.engine, *args)
        elif kind == "decode":
            stages.decode_chunk(self.farm, None, *args)
        elif kind == "stitch":
            stages.stitch_job(self.farm, *args)
        return message

    def drain(self, kinds: tuple[str, ...] = ("generate", "decode", "stitch")) -> int:
        """Run queued stage messages until none of ``kinds`` is left; return how many ran."""
        ran = 0
        while any(m[0] in kinds for m in self.dispatch.messages):
            message = self.dispatch.messages[0]
            if message[0] not in kinds:
                self.dispatch.messages.rotate(-1)
                continue
            self.step()
            ran += 1
        return ran

    def close(self) -> None:
        self.loop.close()
