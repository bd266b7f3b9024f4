"""Celery's worker consumer, sending task events (for Flower) in batches every 100 ms, and
reconnecting to a broker that went away within a quarter second of its return.

Stock Celery flushes the task-event buffer on the next turn of the worker's event loop, so each
task's received, started and succeeded events mostly go out as three Redis publishes of one
event each. In a worker running no-op tasks that was a quarter of Celery's CPU per message, and
in the prefork cpu worker's parent process nearly half. Here a buffered event schedules one
flush 100 ms later; everything buffered by then goes out as one message. Flower shows a task's
state at most that much later. Celery still flushes on its own when 24 events are waiting, and
when the worker stops.

Reconnecting: Celery 5.7's ``Consumer.ensure_connected`` (``celery/worker/consumer/consumer.py``)
calls kombu's ``Connection.ensure_connection`` without intervals, and kombu 5.7's defaults
(``kombu/connection.py``, ``_ensure_connection``) wait 2 s after the first failed attempt,
then 4, 6 … So a Redis restart of a fraction of a second left every worker idle for two
seconds or more after Redis was back. Here the attempts come every 0.25 s, growing by 0.25 s
to at most 5 s.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from vine import promise

EVENT_BATCH_S = 0.1
RECONNECT = {"interval_start": 0.25, "interval_step": 0.25, "interval_max": 5.0}


class Consumer(CeleryConsumer):
    _flush_pending = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # one promise, as Celery's own: the hub's ready set then holds at most one of it
        self._schedule_flush_promise = promise(self._schedule_flush)

    def ensure_connected(self, conn: Any) -> Any:
        conn.ensure_connection = partial(conn.ensure_connection, **RECONNECT)
        return super().ensure_connected(conn)

    def on_send_event_buffered(self) -> None:
        if self.hub:  # call_soon is the hub's thread-safe way in (pool threads send events)
            self.hub.call_soon(self._schedule_flush_promise)

    def _schedule_flush(self) -> None:
        """On the hub's thread: one flush per batch window."""
        if not self._flush_pending:
            self._flush_pending = True
            self.hub.call_later(EVENT_BATCH_S, self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_pending = False
        self._flush_events()


# Celery's ``worker_consumer`` setting
CONSUMER = f"{__name__}:Consumer"
