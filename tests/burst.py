"""Run the farm's stages in this process, draining their messages until none is left (like
arq's burst worker): deterministic tests of the stage logic, on Postgres and S3 or on embedded
mode's SQLite and folder."""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from shared.farm import stages
from shared.farm.book_stitch import stitch_job
from shared.farm.chapter_stitch import stitch_chapter
from shared.farm.context import FarmContext
from shared.farm.dispatch import dispatch
from shared.infra.db import bookkeeping_scope, session_scope
from shared.infra.settings import Settings
from shared.infra.storage import ObjectStore, S3Store
from shared.speech.engine import EngineLoop
from shared.speech.factory import build_engine

if TYPE_CHECKING:
    from shared.farm.live import LivePublisher
    from shared.snac.decoder import SnacDecoder


@dataclass
class BurstSender:
    """Each message as (kind, *its arguments); a stage's ``urgent`` travels as the last, so
    that the next stage is run, and sends on, as the farm's would."""

    messages: deque = field(default_factory=deque)
    sent: list = field(default_factory=list)

    def _send(self, *message) -> None:
        self.messages.append(message)
        self.sent.append(message)

    def generate(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        self._send("generate", job_id, index, urgent)

    def decode(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None:
        self._send("decode", job_id, index, urgent)

    def stitch_chapter(self, job_id: uuid.UUID, chapter: int, urgent: bool = False) -> None:
        self._send("chapter", job_id, chapter, urgent)

    def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None:
        self._send("stitch", job_id, urgent)

    def deliver(self, delivery_id: str, delay_s: float = 0) -> None:
        self._send("deliver", delivery_id)

    def window_lost(self) -> bool:
        return False


class BurstFarm:
    """The stages against the settings' Postgres and S3, or against a SQLite database at
    ``url`` and a folder ``store`` (embedded mode's backends, for tests that need no more)."""

    def __init__(
        self, settings: Settings, url: str | None = None, store: ObjectStore | None = None
    ) -> None:
        self.sender = BurstSender()
        self.farm = FarmContext(
            settings,
            store or S3Store(settings.storage),
            self.sender,
            partial(session_scope, url),
            partial(bookkeeping_scope, url),
        )
        self.loop = EngineLoop()
        self.engine = build_engine(settings, "espeak")
        self.decoder: SnacDecoder | None = None  # for an engine that makes SNAC codes
        self.live: LivePublisher | None = None  # where interactive chunks are heard as made

    def step(self) -> tuple:
        if not self.sender.messages:
            self.dispatch()
        return self.run(self.sender.messages.popleft())

    def run(self, message: tuple) -> tuple:
        kind, *args = message
        if kind == "generate":
            stages.generate_chunk(self.farm, self.loop, self.engine, *args, live=self.live)
        elif kind == "decode":
            stages.decode_chunk(self.farm, self.decoder, *args)
        elif kind == "chapter":
            stitch_chapter(self.farm, *args)
        elif kind == "stitch":
            stitch_job(self.farm, args[0])  # the book's stitch is the last stage
        return message

    def dispatch(self, slots: int = 1000) -> int:
        """A tick of the dispatcher, as if gpu workers with ``slots`` were live; chunks sent."""
        return dispatch(self.farm, slots=slots).sent

    def drain(self, kinds: tuple[str, ...] = ("generate", "decode", "chapter", "stitch")) -> int:
        """Dispatch what waits in Postgres, then run queued stage messages until none of
        ``kinds`` is left; return how many ran."""
        ran = 0
        while True:  # a take that failed a check at decode waits in Postgres: dispatched again
            if "generate" in kinds:
                self.dispatch()
            if not any(m[0] in kinds for m in self.sender.messages):
                return ran
            while any(m[0] in kinds for m in self.sender.messages):
                message = self.sender.messages[0]
                if message[0] not in kinds:
                    self.sender.messages.rotate(-1)
                    continue
                self.step()
                ran += 1

    def close(self) -> None:
        self.loop.close()
