"""The real services tests talk to: a fresh Postgres database, a Redis database, moto's S3
server, each over the wire, and helpers to start farm processes as farmctl does."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from shared.infra.db import migrate

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_TEST_URL = "redis://127.0.0.1:6379/15"
# This run's keys: two test runs on one machine share the Redis database, never a key
REDIS_TEST_PREFIX = f"lyre-test-{uuid.uuid4().hex[:12]}:"


def forget_redis_keys(prefix: str = REDIS_TEST_PREFIX) -> int:
    """Delete this run's keys (and only them): its queues, events, Lyre's own keys, and the
    bindings kombu keeps outside the prefix (``_kombu.binding.<prefix>broker``)."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL)
    keys = [
        key
        for pattern in (f"{prefix}*", f"_kombu.binding*.{prefix}*")
        for key in client.scan_iter(match=pattern, count=1000)
    ]
    if keys:
        client.delete(*keys)
    client.close()
    return len(keys)


def create_database() -> str:
    """Create an empty database, migrate it with Alembic, return its URL."""
    name = f"lyre_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    migrate(url)
    return url


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def wait_for(url: str, timeout: float = 60, ok=(200,)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code in ok:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def start_moto(port: int, log: Path) -> subprocess.Popen:
    """The farm's local S3 endpoint (``workers.local_s3``), as ``make farm-up`` starts it."""
    from workers.farm_processes import processes

    s3 = next(spec for spec in processes(s3_port=port) if spec.name == "s3")
    with log.open("ab") as out:  # the child keeps its own descriptor
        child = subprocess.Popen(s3.argv, stdout=out, stderr=subprocess.STDOUT)
    assert s3.health_url is not None
    wait_for(s3.health_url)
    return child


@contextmanager
def failing_object_store(status: int, code: str) -> Iterator[str]:
    """The endpoint of an object store that answers every request with ``status`` and an S3
    error ``code``, as S3 fails on its own side now and then (503 SlowDown, 500 InternalError)."""

    class Failing(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def answer(self) -> None:
            body = f"<Error><Code>{code}</Code><Message>no</Message></Error>".encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = answer

    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
