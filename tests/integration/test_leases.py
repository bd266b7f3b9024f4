"""Leases held while slow work goes on (``shared.farm.leases``), on Postgres and moto's S3: a
stitch or a chunk that takes several leases is renewed while it works, so the reconciler,
running meanwhile, sends nothing again and a second stitch never starts; a stitch whose lease
another stitch took writes nothing."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select, update

from api.schemas import JobCreate
from api.services.jobs import submit
from shared.farm import stages
from shared.farm.book_stitch import stitch_job
from shared.farm.chapter_stitch import stitch_chapter
from shared.farm.reconcile import reconcile
from shared.farm.tenants import create_key
from shared.infra.models import Chapter, Chunk, Job, JobEvent, utcnow
from tests.burst import BurstFarm

LEASE_S = 1
# two chapters of 6 chunks: each chapter has its own file, made by its own stitch
BOOK = "\n\n".join(
    f"# Part {c}\n\n" + "\n\n".join(f"Paragraph {i} of part {c} is one chunk." for i in range(6))
    for c in (1, 2)
)


class SlowStore:
    """The bucket, with each GET of an object taking ``delay`` one at a time: a stitch reading a
    chapter of 6 chunks takes several leases, as a long book's does at S3's speed."""

    def __init__(self, store, delay: float) -> None:
        self.store, self.delay, self.lock = store, delay, threading.Lock()
        self.uploads: list[str] = []

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_bytes(self, key: str) -> bytes:
        with self.lock:
            time.sleep(self.delay)
        return self.store.get_bytes(key)

    def upload_file(self, key, path, content_type) -> None:
        self.uploads.append(key)
        self.store.upload_file(key, path, content_type)


@pytest.fixture()
def short(farm_settings):
    """The stages on Postgres and S3 with a 1 s lease (renewed every 0.25 s)."""
    farm_ = farm_settings.model_copy(update={"farm": farm_settings.farm.model_copy()})
    farm_.farm.lease_s = LEASE_S
    burst = BurstFarm(farm_)
    with burst.farm.sessions() as session:
        tenant, _ = create_key(session, "acme")
    burst.tenant = tenant
    yield burst
    burst.close()


def uploaded_once(uploads: list[str]) -> bool:
    """The chapter's file and its segment of the M4B, each uploaded once."""
    names = sorted(key.rsplit("/", 1)[1] for key in uploads)
    return names == ["chapter-001.mp3", "segment-001.m4b"]


def run_while_reconciling(burst, work, *args) -> tuple[object, list[tuple], int]:
    """``work`` on a thread of its own while the reconciler runs every 0.1 s, as beat runs it;
    what the work returned, the messages the reconciler sent meanwhile, and the chunks it
    handed back to the dispatcher."""
    sent_before, returned = len(burst.sender.sent), 0
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(work, burst.farm, *args)
        while not running.done():
            returned += reconcile(burst.farm)["returned"]
            time.sleep(0.1)
        return running.result(), burst.sender.sent[sent_before:], returned


def test_a_chapter_stitch_longer_than_its_lease_is_made_once(short):
    job = submit(short.farm, short.tenant, JobCreate(text=BOOK), None)
    short.drain(("generate", "decode"))
    chapters = [m[1:] for m in short.sender.messages if m[0] == "chapter"]
    short.sender.messages.clear()
    store = short.farm.store = SlowStore(short.farm.store, delay=0.5)  # 3 s: three leases
    started = time.monotonic()
    made, resent, _ = run_while_reconciling(short, stitch_chapter, *chapters[0])
    assert made is True and time.monotonic() - started > 2 * LEASE_S
    # never found past its deadline (the other chapter, which nobody stitches, is sent again)
    assert ("chapter", job.id, 0) not in {m[:3] for m in resent}
    assert uploaded_once(store.uploads)
    with short.farm.sessions() as session:
        row = session.get(Chapter, (job.id, 0))
        assert row.status == "done" and row.stitch_holder is None


def test_a_second_stitch_of_a_chapter_being_made_does_nothing(short):
    """The chapter's message delivered twice: the copy taken while the first stitch works
    finds the lease held and returns at once."""
    job = submit(short.farm, short.tenant, JobCreate(text=BOOK), None)
    short.drain(("generate", "decode"))
    first = next(m[1:] for m in short.sender.messages if m[0] == "chapter")
    store = short.farm.store = SlowStore(short.farm.store, delay=0.3)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(stitch_chapter, short.farm, *first)
        time.sleep(1.5 * LEASE_S)  # past the lease it was claimed with
        assert stitch_chapter(short.farm, *first) is False
        assert running.result() is True
    assert uploaded_once(store.uploads)
    with short.farm.sessions() as session:
        assert session.get(Chapter, (job.id, 0)).status == "done"


def test_a_stitch_whose_lease_another_took_writes_nothing(short):
    """Its lease was taken over (it stopped renewing long enough for the reconciler to send
    the chapter again, and another stitch claimed it): it stops before its upload, and the
    chapter stays the other holder's to finish."""
    job = submit(short.farm, short.tenant, JobCreate(text=BOOK), None)
    short.drain(("generate", "decode"))
    first = next(m[1:] for m in short.sender.messages if m[0] == "chapter")
    store = short.farm.store = SlowStore(short.farm.store, delay=0.3)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(stitch_chapter, short.farm, *first)
        time.sleep(0.5)
        with short.farm.sessions() as session:
            session.execute(
                update(Chapter)
                .where(Chapter.job_id == job.id, Chapter.index == 0)
                .values(stitch_holder="another", lease_until=utcnow())
            )
        assert running.result() is False
    assert store.uploads == []
    with short.farm.sessions() as session:
        row = session.get(Chapter, (job.id, 0))
        assert row.status == "waiting" and row.stitch_holder == "another"


def test_a_book_stitch_longer_than_its_lease_is_made_once(short):
    job = submit(short.farm, short.tenant, JobCreate(text=BOOK, format="wav"), None)
    short.drain(("generate", "decode", "chapter"))
    (stitch,) = [m[1:2] for m in short.sender.messages if m[0] == "stitch"]
    short.sender.messages.clear()
    store = short.farm.store = SlowStore(short.farm.store, delay=0.12)  # 12 chunks, two files
    with ThreadPoolExecutor(1) as pool:
        duplicate = pool.submit(lambda: (time.sleep(0.5), stitch_job(short.farm, *stitch))[1])
        made, resent, _ = run_while_reconciling(short, stitch_job, *stitch)
        assert duplicate.result() is False
    assert made is True and not [m for m in resent if m[0] == "stitch"]
    assert len([k for k in store.uploads if "/book." in k]) == 2  # the WAV and the M4B, once
    with short.farm.sessions() as session:
        kinds = session.scalars(select(JobEvent.kind).where(JobEvent.job_id == job.id)).all()
        row = session.get(Job, job.id)
    assert kinds.count("job.succeeded") == 1
    assert row.status == "succeeded" and row.stitch_holder is None


class SlowEngine:
    """The engine, taking ``delay`` more per chunk: a long chunk on a busy GPU."""

    def __init__(self, engine, delay: float) -> None:
        self.engine, self.delay = engine, delay

    def __getattr__(self, name):
        return getattr(self.engine, name)

    async def generate(self, request):
        await asyncio.sleep(self.delay)
        return await self.engine.generate(request)


def test_a_chunk_longer_than_its_lease_stays_with_its_gpu_worker(short):
    job = submit(short.farm, short.tenant, JobCreate(text="One chunk, said slowly."), None)
    short.dispatch()
    ((_, job_id, index, urgent),) = short.sender.messages
    engine = SlowEngine(short.engine, delay=3 * LEASE_S)

    def generate(farm, *args):
        return stages.generate_chunk(farm, short.loop, engine, *args)

    moved, _, returned = run_while_reconciling(short, generate, job_id, index, urgent)
    assert moved is True and returned == 0
    with short.farm.sessions() as session:
        chunk = session.scalar(select(Chunk).where(Chunk.job_id == job.id))
    assert chunk.status == "generated" and chunk.attempts == 1
    assert short.dispatch() == 0  # nothing to send again


class FailingStore(SlowStore):
    """The bucket refusing the first upload, as S3 does now and then (a 503)."""

    def upload_file(self, key, path, content_type) -> None:
        if not self.uploads:
            self.uploads.append(None)
            raise OSError("503 Slow Down")
        super().upload_file(key, path, content_type)


def test_a_failed_stitch_gives_its_lease_up_for_its_retry(short):
    """The task's retry takes the chapter at once, without waiting for the deadline, which
    the reconciler still waits for."""
    job = submit(short.farm, short.tenant, JobCreate(text=BOOK), None)
    short.drain(("generate", "decode"))
    first = next(m[1:] for m in short.sender.messages if m[0] == "chapter")
    short.farm.store = FailingStore(short.farm.store, delay=0)
    with pytest.raises(OSError, match="503"):
        stitch_chapter(short.farm, *first)
    with short.farm.sessions() as session:
        row = session.get(Chapter, (job.id, 0))
        assert row.stitch_holder is None and row.lease_until > utcnow()
    assert stitch_chapter(short.farm, *first) is True
