"""Stage functions with messages drained in process.

Most run on embedded mode's backends (SQLite, a folder for the bucket): the stage logic is the
same and needs nothing more. Those on ``pg_burst`` run on Postgres and S3, for what only
they do: the decode's single-statement fan-in under concurrent decodes.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import av
import httpx
import numpy as np
import psycopg
import pytest
from sqlalchemy import delete, event, select, update
from sqlalchemy.engine import Engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from api.schemas import JobCreate
from api.services.jobs import submit
from shared.audio import programme as joining
from shared.audio.presets import Mastering
from shared.audio.programme import pause_samples
from shared.farm import book_stitch, chapter_stitch, stages
from shared.farm.jobs import cancel_job, fail_job
from shared.farm.leases import RENEW_STITCH_LEASE, Lease
from shared.farm.reconcile import reconcile
from shared.farm.tenants import create_key
from shared.infra.db import get_engine, migrate
from shared.infra.models import (
    Chapter,
    Chunk,
    Job,
    JobEvent,
    WebhookAttempt,
    WebhookDelivery,
    utcnow,
)
from shared.infra.settings import Settings, WebhookSettings
from shared.infra.storage import LocalStore
from shared.webhooks.delivery import backoff, deliver
from shared.webhooks.urls import pinned
from tests.burst import BurstFarm

BOOK = "# One\n\nHello there. This is a test of the farm.\n\n# Two\n\nThe end is near."


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory):
    """A migrated SQLite database, copied for each test."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture()
def burst(sqlite_template, tmp_path):
    path = tmp_path / "lyre.db"
    shutil.copyfile(sqlite_template, path)
    settings = Settings.model_validate(
        {
            "farm": {"lease_s": 4},
            "chunking": {"max_chars": 80},
            "webhooks": {"allowlist": ["127.0.0.0/8"], "base_delay_s": 0.2},
        }
    )
    farm = BurstFarm(settings, f"sqlite:///{path}", LocalStore(tmp_path / "store"))
    yield farm
    farm.close()


@pytest.fixture()
def pg_burst(farm_settings):
    farm = BurstFarm(farm_settings)
    yield farm
    farm.close()


def tenant_of(burst):
    with burst.farm.sessions() as session:
        tenant, _ = create_key(session, "acme")
    return tenant


@pytest.fixture()
def tenant(burst):
    return tenant_of(burst)


def test_fan_in_sends_one_stitch_even_when_messages_are_duplicated(burst, tenant):
    job = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    burst.drain(("generate",))
    decodes = [m for m in burst.sender.messages if m[0] == "decode"]
    burst.sender.messages.extend(decodes)  # every decode delivered twice
    burst.drain(("generate", "decode", "chapter"))
    chapters = [m for m in burst.sender.sent if m[0] == "chapter"]
    stitches = [m for m in burst.sender.sent if m[0] == "stitch"]
    assert len(chapters) == 2 and len(stitches) == 1  # a chapter's stitch, then the book's
    burst.drain()
    with burst.farm.sessions() as session:
        done = session.get(Job, job.id)
        assert done.status == "succeeded" and done.chunks_done == done.chunks_total == 4
        chapters = session.scalars(select(Chapter).where(Chapter.job_id == job.id)).all()
        assert [(c.chunks_done, c.chunks_total) for c in chapters] == [(2, 2), (2, 2)]


def test_fan_in_counts_each_chunk_once_when_decodes_race(pg_burst):
    """Every decode sent twice, all at once from eight threads: each chunk is done once, the
    job counts each once, and exactly one decode sends the chapter's stitch, which sends the
    book's stitch once. Only the decode that fills the chapter's count tries to lease it."""
    burst, tenant = pg_burst, tenant_of(pg_burst)
    text = "\n\n".join(f"Paragraph {i} is one chunk of the book." for i in range(12))
    job = submit(burst.farm, tenant, JobCreate(text=text), None)
    burst.drain(("generate",))
    decodes = [args for kind, *args in burst.sender.messages if kind == "decode"]
    burst.sender.messages.clear()
    leases = []

    def lease_tried(_connection, _cursor, statement, *_) -> None:  # type: ignore[no-untyped-def]
        if statement.startswith("UPDATE chapter SET lease_until"):
            leases.append(statement)

    event.listen(Engine, "before_cursor_execute", lease_tried)
    try:
        with ThreadPoolExecutor(8) as pool:
            moved = list(pool.map(lambda a: stages.decode_chunk(burst.farm, None, *a), decodes * 2))
    finally:
        event.remove(Engine, "before_cursor_execute", lease_tried)
    assert len(decodes) == 12 and moved.count(True) == 12
    assert len(leases) == 1
    assert len([m for m in burst.sender.sent if m[0] == "chapter"]) == 1
    burst.drain(("chapter",))
    assert len([m for m in burst.sender.sent if m[0] == "stitch"]) == 1
    with burst.farm.sessions() as session:
        row = session.get(Job, job.id)
        assert row.chunks_done == row.chunks_total == 12 and row.stitch_lease_until is not None
        chapter = session.get(Chapter, (job.id, 0))  # the one statement counted it there too
        assert chapter.chunks_done == chapter.chunks_total == 12


def test_chapters_finishing_at_once_send_the_books_stitch_once(pg_burst):
    """Eight chapters stitched at once from eight threads, each sent twice: each chapter is
    made once, and exactly one of them, the last to finish, sends the book's stitch."""
    burst, tenant = pg_burst, tenant_of(pg_burst)
    text = "\n\n".join(f"# Part {i}\n\nChapter {i} has one short paragraph." for i in range(8))
    job = submit(burst.farm, tenant, JobCreate(text=text), None)
    burst.drain(("generate", "decode"))
    chapters = [args for kind, *args in burst.sender.messages if kind == "chapter"]
    burst.sender.messages.clear()
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda a: chapter_stitch.stitch_chapter(burst.farm, *a), chapters * 2))
    assert len(chapters) == 8 and made.count(True) == 8
    assert [m[0] for m in burst.sender.messages] == ["stitch"]
    burst.drain()
    with burst.farm.sessions() as session:
        assert session.get(Job, job.id).status == "succeeded"


def test_the_stitch_reads_chunks_ahead_on_several_threads(burst, tenant):
    """An object store that takes 50 ms per GET: the book's stitch keeps READERS of them in
    flight for each of its two files (the programme and the M4B, encoded at once), reads each
    chunk once for each, and the programme is whole."""
    text = "\n\n".join(f"Paragraph {i} is one chunk of the book." for i in range(12))
    job = submit(burst.farm, tenant, JobCreate(text=text), None)
    burst.drain(("generate", "decode", "chapter"))
    store, lock = burst.farm.store, threading.Lock()
    reads: list[str] = []
    in_flight = {"now": 0, "most": 0}

    class SlowStore:
        def __getattr__(self, name):
            return getattr(store, name)

        def get_bytes(self, key):
            with lock:
                reads.append(key)
                in_flight["now"] += 1
                in_flight["most"] = max(in_flight["most"], in_flight["now"])
            time.sleep(0.05)
            with lock:
                in_flight["now"] -= 1
            return store.get_bytes(key)

    burst.farm.store = SlowStore()
    burst.drain(("stitch",))
    assert len(reads) == 24 and len(set(reads)) == 12
    assert chapter_stitch.READERS <= in_flight["most"] <= 2 * chapter_stitch.READERS
    with burst.farm.sessions() as session:
        assert session.get(Job, job.id).status == "succeeded"


def test_codes_live_in_the_chunk_row_until_the_chunk_is_decoded(burst, tenant):
    job = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    burst.drain(("generate",))
    with burst.farm.sessions() as session:
        chunks = session.scalars(select(Chunk).where(Chunk.job_id == job.id)).all()
        assert {c.status for c in chunks} == {"generated"} and all(c.speech for c in chunks)
    burst.drain()
    with burst.farm.sessions() as session:
        chunks = session.scalars(select(Chunk).where(Chunk.job_id == job.id)).all()
        assert {c.status for c in chunks} == {"done"} and not any(c.speech for c in chunks)


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((reference - other) ** 2).sum()))


def decoded(path) -> np.ndarray:
    with av.open(str(path)) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return pcm / 32768 if pcm.dtype == np.int16 else pcm  # WAV decodes to int16, MP3 to float


def test_an_mp3_encoded_as_two_halves_decodes_to_the_programme(
    burst, tenant, monkeypatch, tmp_path
):
    """The seam inside a pause neither shifts the second half nor adds samples."""
    job = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    burst.drain(("generate", "decode"))
    parts = chapter_stitch.read_parts(burst.farm, job.id)
    audio = burst.farm.settings.audio
    pauses = [pause_samples(p.boundary, audio) for p in parts]

    def encode(name: str, fmt: str) -> tuple[int, np.ndarray]:
        path, making = tmp_path / f"{name}.{fmt}", Mastering(format=fmt)
        layout = joining.lay_out(parts, [], audio, making)
        lease = Lease(burst.farm, RENEW_STITCH_LEASE, job=job.id)  # not held: never lost
        cost = chapter_stitch.StitchCost()
        with cost.total.counting():
            samples = book_stitch._encode_programme(
                burst.farm, lease, job, parts, layout, fmt, 64, None, path, cost
            )
        # the encoders' CPU, on either thread, is part of the stitch's
        assert 0 < cost.encode.seconds <= cost.total.seconds
        return samples, decoded(path)

    samples, programme = encode("programme", "wav")
    in_one = encode("one", "mp3")
    monkeypatch.setattr(joining, "PARALLEL_MIN_SAMPLES", 0)
    assert joining.mp3_seam(pauses, [p.stats.samples for p in parts]) is not None
    in_two = encode("two", "mp3")
    assert in_one[0] == in_two[0] == samples == len(programme)
    for _, pcm in (in_one, in_two):
        assert abs(len(pcm) - samples) <= 16  # FFmpeg trims the last frame's padding roughly
        n = min(len(pcm), samples)
        assert snr_db(programme[:n], pcm[:n]) > 10  # misaligned by even a granule: below 0 dB


@pytest.mark.parametrize("backend", ["burst", "pg_burst"])
def test_the_reconciler_resends_only_expired_work(request, backend):
    burst = request.getfixturevalue(backend)  # on Postgres, its batches are SKIP LOCKED
    tenant = tenant_of(burst)
    job = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    assert burst.dispatch() == 4
    burst.sender.messages.clear()  # the queue lost every message
    nothing = {"returned": 0, "decode": 0, "chapter": 0, "stitch": 0, "deliver": 0}
    assert reconcile(burst.farm) == nothing
    later = utcnow() + timedelta(seconds=burst.farm.settings.farm.lease_s + 1)
    assert reconcile(burst.farm, now=later)["returned"] == 4  # to the dispatcher
    assert reconcile(burst.farm, now=later)["returned"] == 0  # waiting in Postgres: no lease
    assert not burst.sender.messages
    burst.drain()
    with burst.farm.sessions() as session:
        assert session.get(Job, job.id).status == "succeeded"


class Flaky(BaseHTTPRequestHandler):
    statuses: ClassVar[list[int]] = []
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    paths: ClassVar[list[str]] = []
    while_posting: ClassVar[Callable[[], None]] = staticmethod(lambda: None)

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        Flaky.while_posting()
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Flaky.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        Flaky.paths.append(self.path)
        status = Flaky.statuses.pop(0) if Flaky.statuses else 204
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.end_headers()


@pytest.fixture()
def flaky_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def queued_delivery(burst, url: str, text: str = "Hi.") -> str:
    """A job of ``text`` with a webhook to ``url``, run through; its delivery's id."""
    submit(burst.farm, tenant_of(burst), JobCreate(text=text, webhook_url=url), None)
    burst.drain()
    (delivery_id,) = [m[1] for m in burst.sender.sent if m[0] == "deliver"]
    return delivery_id


@contextmanager
def while_posting(action: Callable[[], None]) -> Iterator[None]:
    """``action`` runs while the receiver has a POST, before it answers."""
    Flaky.while_posting = staticmethod(action)
    try:
        yield
    finally:
        Flaky.while_posting = staticmethod(lambda: None)


def test_webhooks_retry_with_backoff_and_record_each_attempt(burst, tenant, flaky_url):
    Flaky.statuses = [500, 503]
    _job = submit(burst.farm, tenant, JobCreate(text=BOOK, webhook_url=flaky_url), None)
    burst.drain()
    (delivery_id,) = [m[1] for m in burst.sender.sent if m[0] == "deliver"]
    settings = burst.farm.settings.webhooks
    delays = []
    with httpx.Client() as client:
        while True:
            delay = deliver(burst.farm.sessions, delivery_id, client, settings)
            if delay is None:
                break
            delays.append(delay)
    assert len(delays) == 2 and delays[1] > settings.base_delay_s  # doubling, with jitter
    with burst.farm.sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        attempts = session.scalars(
            select(WebhookAttempt.status_code)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        ).all()
    assert delivery.status == "delivered" and attempts == [500, 503, 204]
    assert delivery.payload["type"] == "job.succeeded"


def test_a_rotated_secret_signs_the_next_delivery_and_the_old_one_verifies_nothing(
    client, burst, flaky_url
):
    """The secret as a tenant reads it (GET /v1/webhooks/secret) verifies a delivery with the
    official standardwebhooks library; after a rotation, a retry is signed with the new one."""
    with burst.farm.sessions() as session:
        tenant, key = create_key(session, "acme")
    auth = {"Authorization": f"Bearer {key}"}
    old = client.get("/v1/webhooks/secret", headers=auth).json()["secret"]
    assert old.startswith("whsec_") and old == tenant.webhook_secret
    Flaky.statuses, Flaky.received = [503], []
    submit(burst.farm, tenant, JobCreate(text="Hi.", webhook_url=flaky_url), None)
    burst.drain()
    (delivery_id,) = [m[1] for m in burst.sender.sent if m[0] == "deliver"]
    settings = burst.farm.settings.webhooks
    with httpx.Client() as http:
        assert deliver(burst.farm.sessions, delivery_id, http, settings) is not None  # 503
        new = client.post("/v1/webhooks/secret/rotate", headers=auth).json()["secret"]
        assert (
            new != old and client.get("/v1/webhooks/secret", headers=auth).json()["secret"] == new
        )
        assert deliver(burst.farm.sessions, delivery_id, http, settings) is None  # 204
    (first_headers, first), (headers, body) = Flaky.received
    assert Webhook(old).verify(first, first_headers)["type"] == "job.succeeded"
    assert Webhook(new).verify(body, headers)["type"] == "job.succeeded"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_a_delivery_whose_database_goes_away_during_the_post_is_recorded_once(
    farm_settings, flaky_url
):
    """Postgres ends every session of the farm while the client receives the event (as a
    restart does): the outcome is recorded on a new connection, so the reconciler has nothing
    to send again and the client got the event once."""

    def end_sessions() -> None:
        farm_database = get_engine().url.set(drivername="postgresql")
        with psycopg.connect(farm_database.render_as_string(False), autocommit=True) as admin:
            ended = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        assert ended, "the farm had no session to end"

    burst = BurstFarm(farm_settings)  # on Postgres, not this module's SQLite
    try:
        delivery_id = queued_delivery(burst, flaky_url)
        Flaky.received = []
        with while_posting(end_sessions), httpx.Client() as http:
            settings = burst.farm.settings.webhooks
            assert deliver(burst.farm.sessions, delivery_id, http, settings) is None
        assert _attempts(burst, delivery_id) == [(204, None)] and len(Flaky.received) == 1
        reconcile(burst.farm, now=utcnow() + timedelta(hours=1))
        assert [m[1] for m in burst.sender.sent if m[0] == "deliver"] == [delivery_id]
    finally:
        burst.close()


def _attempts(burst, delivery_id) -> list[tuple[int | None, str | None]]:
    with burst.farm.sessions() as session:
        return session.execute(
            select(WebhookAttempt.status_code, WebhookAttempt.error)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.id)
        ).all()


def test_a_webhook_redirect_is_not_followed(burst, tenant, flaky_url):
    Flaky.statuses, Flaky.paths = [302], []
    submit(burst.farm, tenant, JobCreate(text="Hi.", webhook_url=flaky_url), None)
    burst.drain()
    (delivery_id,) = [m[1] for m in burst.sender.sent if m[0] == "deliver"]
    with httpx.Client() as http:
        assert deliver(burst.farm.sessions, delivery_id, http, burst.farm.settings.webhooks)
    assert Flaky.paths == ["/hook"] and _attempts(burst, delivery_id) == [(302, "HTTP 302")]


def test_a_webhook_host_that_resolves_inside_at_send_time_is_not_called(
    burst, tenant, flaky_url, monkeypatch
):
    """DNS rebinding: the name resolved to a public address when the job was submitted, and
    to this machine when the delivery is sent. The address is checked again at send time, and
    the request goes to the address checked."""
    port = int(flaky_url.rsplit(":", 1)[1].split("/")[0])
    answers = iter(["93.184.216.34", "127.0.0.1"])  # a public address (never called), then not

    def resolve(host, *_args, **_kwargs):
        assert host == "hooks.example"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    monkeypatch.setattr("shared.webhooks.urls.socket.getaddrinfo", resolve)
    webhooks = burst.farm.settings.webhooks.model_copy(update={"allowlist": []})
    monkeypatch.setattr(burst.farm.settings, "webhooks", webhooks)
    Flaky.paths = []
    url = f"http://hooks.example:{port}/hook"
    submit(burst.farm, tenant, JobCreate(text="Hi.", webhook_url=url), None)
    burst.drain()
    (delivery_id,) = [m[1] for m in burst.sender.sent if m[0] == "deliver"]
    with httpx.Client() as http:
        assert deliver(burst.farm.sessions, delivery_id, http, webhooks)  # retried later
    ((status, error),) = _attempts(burst, delivery_id)
    assert status is None and error.startswith("refused when sending: webhook_url resolves to")
    assert Flaky.paths == []


def test_a_webhook_is_sent_to_the_address_checked_with_its_own_host_and_tls_name():
    assert pinned("https://hooks.example:8443/a?b=1", "203.0.113.7") == (
        "https://203.0.113.7:8443/a?b=1",
        {"Host": "hooks.example:8443"},
        {"sni_hostname": "hooks.example"},
    )
    assert pinned("http://hooks.example/a", "2001:db8::1") == (
        "http://[2001:db8::1]/a",
        {"Host": "hooks.example"},
        {},
    )


def test_webhooks_give_up_after_the_retry_window(burst, tenant, flaky_url):
    Flaky.statuses = [500] * 5
    _job = submit(burst.farm, tenant, JobCreate(text="Hi.", webhook_url=flaky_url), None)
    burst.drain()
    (delivery_id,) = [m[1] for m in burst.sender.sent if m[0] == "deliver"]
    with burst.farm.sessions() as session:
        session.execute(update(WebhookDelivery).values(created_at=utcnow() - timedelta(days=2)))
    with httpx.Client() as client:
        assert (
            deliver(burst.farm.sessions, delivery_id, client, burst.farm.settings.webhooks) is None
        )
    with burst.farm.sessions() as session:
        assert session.get(WebhookDelivery, delivery_id).status == "failed"


@pytest.mark.parametrize("backend", ["burst", "pg_burst"])
def test_a_delivery_retries_then_gives_up_by_its_named_statements(request, backend, flaky_url):
    """RETRY_DELIVERY within the retry window, DELIVERY_PENDING_TO_FAILED past it: on SQLite
    (its naive times) and Postgres alike, each attempt counted and recorded."""
    burst = request.getfixturevalue(backend)
    Flaky.statuses = [500, 500]
    delivery_id = queued_delivery(burst, flaky_url)
    webhooks = burst.farm.settings.webhooks
    with httpx.Client() as http:
        assert deliver(burst.farm.sessions, delivery_id, http, webhooks) is not None
        with burst.farm.sessions() as session:  # the window has passed since
            old = utcnow() - timedelta(seconds=webhooks.retry_for_s + 1)
            session.execute(update(WebhookDelivery).values(created_at=old, next_attempt_at=old))
        assert deliver(burst.farm.sessions, delivery_id, http, webhooks) is None
    with burst.farm.sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert _attempts(burst, delivery_id) == [(500, "HTTP 500"), (500, "HTTP 500")]


@pytest.mark.parametrize("meanwhile", ["job deleted", "delivered by a duplicate"])
def test_an_attempt_whose_delivery_moved_meanwhile_changes_nothing(pg_burst, flaky_url, meanwhile):
    """While the POST is made, the job is deleted (and its deliveries with it), or another
    attempt records the delivery delivered: this attempt's outcome moves nothing."""
    burst = pg_burst
    delivery_id = queued_delivery(burst, flaky_url)

    def move() -> None:
        with burst.farm.sessions() as session:
            if meanwhile == "job deleted":
                session.execute(delete(Job))
            else:
                session.execute(update(WebhookDelivery).values(status="delivered", attempts=7))

    Flaky.statuses = [500]
    with while_posting(move), httpx.Client() as http:
        webhooks = burst.farm.settings.webhooks
        assert deliver(burst.farm.sessions, delivery_id, http, webhooks) is None
    with burst.farm.sessions() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
    if meanwhile == "job deleted":
        assert delivery is None and _attempts(burst, delivery_id) == []
    else:  # the attempt is recorded; the other's outcome stands
        assert (delivery.status, delivery.attempts) == ("delivered", 7)
        assert _attempts(burst, delivery_id) == [(500, "HTTP 500")]


def test_backoff_grows_and_is_capped():
    s = WebhookSettings(base_delay_s=1.0, max_delay_s=8.0)
    for attempt, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (9, 8)]:
        delays = [backoff(attempt, s) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jitter


def test_a_failed_stage_fails_the_job_and_queues_its_webhook(burst, tenant, flaky_url):
    job = submit(burst.farm, tenant, JobCreate(text="Hi.", webhook_url=flaky_url), None)
    assert fail_job(burst.farm, job.id, "gpu.generate_chunk failed: boom")
    assert not fail_job(burst.farm, job.id, "again")  # already final
    with burst.farm.sessions() as session:
        failed = session.get(Job, job.id)
        event = session.scalar(select(WebhookDelivery.event_type))
    assert failed.status == "failed" and failed.error.endswith("boom")
    assert event == "job.failed"
    burst.drain()
    with burst.farm.sessions() as session:
        chunk = session.scalar(select(Chunk).where(Chunk.job_id == job.id))
    assert chunk.status == "pending" and chunk.attempts == 0  # nothing more was spent


@pytest.mark.parametrize("backend", ["burst", "pg_burst"])
def test_every_transition_writes_its_event(request, backend):
    """The migration's triggers, on SQLite and on Postgres: each job and chunk state entered
    is one event, in order, with the chunk's index or the job's outcome."""
    burst = request.getfixturevalue(backend)
    tenant = tenant_of(burst)
    done = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    burst.drain()
    stopped = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    assert cancel_job(burst.farm, stopped.id)

    def history(job_id):
        with burst.farm.sessions() as session:
            query = select(JobEvent.kind, JobEvent.data).where(JobEvent.job_id == job_id)
            return session.execute(query.order_by(JobEvent.id)).all()

    events = history(done.id)
    kinds = [kind for kind, _ in events]
    assert [k for k in kinds if k.startswith("job.")] == [
        "job.queued",
        "job.running",
        "job.succeeded",
    ]
    for kind in ("chunk.generated", "chunk.done"):
        assert sorted(data["chunk"] for k, data in events if k == kind) == [0, 1, 2, 3]
    assert kinds.index("job.running") < kinds.index("chunk.generated")
    assert kinds[-1] == "job.succeeded" and events[-1].data["output_key"].endswith(".mp3")
    events = history(stopped.id)
    assert [kind for kind, _ in events if kind.startswith("job.")] == [
        "job.queued",
        "job.cancelled",
    ]
    assert sorted(d["chunk"] for k, d in events if k == "chunk.cancelled") == [0, 1, 2, 3]
