"""What the stages run against: :class:`FarmContext`, the farm as one process reaches it
(settings, object store, database, queues), and the :class:`Sender` that puts a stage's next
message on its queue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from shared.infra.models import utcnow
from shared.infra.settings import Settings
from shared.infra.storage import ObjectStore


class Sender(Protocol):
    """Sends the next message of a job to its queue: Celery in the farm
    (``shared.farm.sender``), a thread pool in embedded mode (``cli.runner``). An
    ``urgent`` message (a short job's) goes ahead of the others on its queue."""

    def generate(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None: ...
    def decode(self, job_id: uuid.UUID, index: int, urgent: bool = False) -> None: ...
    def stitch_chapter(self, job_id: uuid.UUID, chapter: int, urgent: bool = False) -> None: ...
    def stitch(self, job_id: uuid.UUID, urgent: bool = False) -> None: ...
    def deliver(self, delivery_id: str, delay_s: float = 0) -> None: ...
    def window_lost(self) -> bool:
        """Whether the broker lost the messages sent so far (Redis restarted empty); asked by
        the dispatcher at each tick, true once per loss."""
        ...


@dataclass
class FarmContext:
    """The farm's handles in this process (a process of the farm's, or ``lyre synth``'s own
    embedded farm); every stage and service takes one, as ``farm``. ``sessions`` opens a
    durable transaction (``shared.infra.db.session_scope``); ``bookkeeping`` a connection for
    one statement of a stage's own state changes, committed on its own without waiting for the
    disk (``shared.infra.db.bookkeeping_scope`` says why that is safe)."""

    settings: Settings
    store: ObjectStore
    send: Sender
    sessions: Callable[[], AbstractContextManager[Session]]
    bookkeeping: Callable[[], AbstractContextManager[Connection]]

    def lease(self) -> datetime:
        """The deadline of work handed out now: past it, the reconciler sends it again."""
        return utcnow() + timedelta(seconds=self.settings.farm.lease_s)
