"""The dispatcher's process: ``python -m workers.dispatcher``.

Runs ``shared.farm.dispatch.dispatch`` at least every ``dispatch.every_s``, and at once when a
submission or a redo says there is new work (Postgres ``LISTEN``). Run one or two: each tick
takes an advisory lock, so a second dispatcher only takes turns with the first (a spare that
is already warm). A tick that fails (Postgres or Redis restarting) is tried again a quarter
second later; the time of the last tick goes to Redis once a period, for the healthcheck
(``workers.healthcheck dispatcher``).
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import threading
import time

import psycopg
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url

from shared.farm.dispatch import dispatch
from shared.farm.sender import celery_farm
from shared.infra import queues
from shared.infra.settings import Settings, get_settings

log = logging.getLogger("lyre.dispatcher")

MIN_GAP_S = 0.05  # between ticks, however many submissions wake it
RETRY_S = 0.25  # after a failed tick: Postgres or Redis coming back is noticed this soon


def heartbeat_key(settings: Settings, host: str | None = None) -> str:
    """Where this host's dispatcher writes its last tick."""
    name = f"{queues.DISPATCHER_HEARTBEAT_KEY}:{host or socket.gethostname()}"
    return queues.key(settings.redis.key_prefix, name)


def listen(settings: Settings) -> psycopg.Connection | None:
    """A connection listening on the dispatch channel, or None while Postgres is away."""
    url = make_url(settings.database.url).set(drivername="postgresql")
    try:
        connection = psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)
        connection.execute(f"LISTEN {queues.DISPATCH_CHANNEL}")
    except psycopg.Error as exc:
        log.warning("cannot listen for new work (polling instead): %s", exc)
        return None
    return connection


def wait_for_work(
    connection: psycopg.Connection | None, settings: Settings, stop: threading.Event
) -> psycopg.Connection | None:
    """Until a notification or a period passes; the listening connection, made anew if lost."""
    period = settings.dispatch.every_s
    if connection is None or connection.closed:
        connection = listen(settings)
        if connection is None:
            stop.wait(period)
            return None
    try:
        for _ in connection.notifies(timeout=period, stop_after=1):
            pass
    except psycopg.Error as exc:
        log.warning("lost the listening connection: %s", exc)
        connection.close()
        stop.wait(period)
        return None
    return connection


def run(stop: threading.Event) -> None:
    settings = get_settings()
    farm = celery_farm()
    client = queues.redis_client(settings.redis.url, timeout_s=5)
    connection = listen(settings)
    log.info("dispatching every %.2f s and on new work", settings.dispatch.every_s)
    beaten = -math.inf  # when the healthcheck's key was last written
    while not stop.is_set():
        started = time.monotonic()
        try:
            tick = dispatch(farm)
        except Exception as exc:  # a dependency restarting: tried again shortly
            log.warning("dispatch failed, trying again in %.2f s: %s", RETRY_S, exc)
            stop.wait(RETRY_S)
            continue
        if tick.sent or tick.returned:
            log.info(
                "sent %d chunks (%d urgent); window %d/%d; %d back from a lost broker",
                tick.sent,
                tick.urgent,
                tick.in_window,
                tick.window,
                tick.returned,
            )
        if time.monotonic() - beaten >= settings.dispatch.every_s:  # not at every tick
            try:
                client.set(heartbeat_key(settings), str(time.time()), ex=3600)
                beaten = time.monotonic()
            except RedisError as exc:
                log.warning("heartbeat not written: %s", exc)
        if not tick.again:
            connection = wait_for_work(connection, settings, stop)
        stop.wait(max(0.0, MIN_GAP_S - (time.monotonic() - started)))


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run(stop)


if __name__ == "__main__":
    main()
