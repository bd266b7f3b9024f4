"""kombu's Redis transport, with one Redis client per channel instead of one per command.

Stock kombu builds a new ``redis.Redis`` for every publish, ack, event batch and unacked-index
update. The client only borrows connections from the channel's pool, but building it registers
some two hundred response callbacks: measured in a worker running no-op tasks, that was about a
third of Celery's CPU per message. A Redis client is safe to share between threads (each command
takes a connection from the pool), so each channel keeps one, and builds a new one only when
kombu has replaced the channel's pool (after a lost connection).
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    _shared_client: Any = None

    def _create_client(self, asynchronous: bool = False) -> Any:
        if asynchronous:  # the event loop's BRPOP and pub/sub clients: built once by kombu
            return super()._create_client(asynchronous=True)
        client = self._shared_client
        if client is None or client.connection_pool is not self.pool:
            client = self._shared_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


# Celery's ``broker_transport`` for redis:// broker URLs. kombu picks its SSL defaults for
# rediss:// by the scheme's name, so those keep kombu's own transport, as sentinel:// does.
TRANSPORT = f"{__name__}:Transport"
