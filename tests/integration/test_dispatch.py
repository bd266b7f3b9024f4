"""The dispatcher on Postgres: the window, the policy across tenants and jobs, the limits, the
lock, and a broker that lost its messages."""

from __future__ import annotations

import uuid
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from api.schemas import JobCreate
from api.services.jobs import submit
from shared.farm.dispatch import LOCK, dispatch
from shared.farm.gpu_workers import forget_gpu_worker, live_slots, register_gpu_worker
from shared.farm.tenants import create_key
from shared.farm.transitions import CLAIM_PENDING_CHUNK
from shared.infra.models import Chunk, GpuWorker, Job, Tenant, utcnow


def book(chapters: int, chunks: int, title: str = "Book") -> str:
    """A text of ``chapters`` chapters of ``chunks`` one-sentence chunks each, after a chunk
    for the chapter's title (80 characters a chunk in the test settings)."""
    return "\n\n".join(
        f"# {title} {c}\n\n"
        + "\n\n".join(
            f"Sentence {_tag(i)} of chapter {_tag(c)} is one chunk." for i in range(chunks)
        )
        for c in range(chapters)
    )


def _tag(n: int) -> str:
    """``n`` as two letters: each sentence is as long said as written ("007" would be said
    "zero zero seven", longer than "zero zero one")."""
    return chr(97 + n // 26) + chr(97 + n % 26)


@pytest.fixture()
def farm(burst):
    """The burst farm, its window twice the slots (the numbers below are for that)."""
    settings = burst.farm.settings
    dispatching = settings.dispatch.model_copy(update={"window_per_slot": 2.0})
    burst.farm.settings = settings.model_copy(update={"dispatch": dispatching})
    return burst.farm


def tenant(farm, name: str, **settings) -> Tenant:
    with farm.sessions() as session:
        found, _ = create_key(session, name)
        for field, value in settings.items():
            setattr(found, field, value)
    return found


def job(farm, owner: Tenant, text: str, **fields) -> uuid.UUID:
    return submit(farm, owner, JobCreate(text=text, **fields), None).id


def sent(burst) -> list[tuple]:
    """The generate messages sent so far, taken off the queue (the others left on it): (job,
    index, urgent)."""
    messages = [m[1:] for m in burst.sender.messages if m[0] == "generate"]
    others = [m for m in burst.sender.messages if m[0] != "generate"]
    burst.sender.messages.clear()
    burst.sender.messages.extend(others)
    return messages


def generate(burst, messages: list[tuple]) -> None:
    for message in messages:
        burst.run(("generate", *message))


def test_the_window_holds_a_multiple_of_the_slots_and_refills_as_chunks_finish(burst, farm):
    acme = tenant(farm, "acme")
    book_id = job(farm, acme, book(1, 20))
    tick = dispatch(farm, slots=3)
    assert (tick.window, tick.sent, tick.in_window) == (6, 6, 6)
    first = sent(burst)
    # longest first (the sentences, all as long), then in reading order; the title is shortest
    assert [index for _, index, _ in first] == list(range(1, 7))
    assert dispatch(farm, slots=3).sent == 0  # full
    generate(burst, first[:2])
    assert dispatch(farm, slots=3).sent == 2
    with farm.sessions() as session:
        assert session.get(Job, book_id).status == "running"  # started when first sent
        rows = session.scalars(select(Chunk).where(Chunk.job_id == book_id)).all()
        assert sum(r.sent_at is not None and r.status == "pending" for r in rows) == 6
        assert sum(r.taken_at is not None for r in rows) == 2


def test_tenants_share_the_window_by_weight_and_jobs_go_by_priority(burst, farm):
    a, b = tenant(farm, "a", weight=3.0), tenant(farm, "b")
    a_low = job(farm, a, book(2, 30, "Low"))
    a_high = job(farm, a, book(2, 30, "High"), priority=5)
    b_book = job(farm, b, book(2, 30))
    dispatch(farm, slots=20)  # a window of 40
    messages = sent(burst)
    owners = [m[0] for m in messages]
    assert owners.count(a_high) == 30 and owners.count(b_book) == 10
    assert a_low not in owners  # a's own order: its higher-priority job first
    with farm.sessions() as session:
        high = [
            session.get(Chunk, (a_high, index)).chapter
            for job_id, index, _ in messages
            if job_id == a_high
        ]
    assert high == sorted(high)  # chapter by chapter


def test_a_tenant_at_its_running_jobs_limit_waits_without_slowing_others(burst, farm):
    a, b = tenant(farm, "a", running_jobs=1), tenant(farm, "b")
    first, second = job(farm, a, book(1, 10)), job(farm, a, book(1, 10))
    b_book = job(farm, b, book(1, 10))
    dispatch(farm, slots=100)
    owners = {m[0] for m in sent(burst)}
    assert owners == {first, b_book}
    with farm.sessions() as session:
        assert session.get(Job, second).status == "queued"
    farm.send.generate = lambda *args, **kw: None  # the cancel below sends nothing else
    from shared.farm.jobs import cancel_job

    cancel_job(farm, first)
    del farm.send.generate
    dispatch(farm, slots=100)
    assert {m[0] for m in sent(burst)} == {second}


def test_a_short_job_goes_ahead_of_a_full_window(burst, farm):
    a, b = tenant(farm, "a"), tenant(farm, "b")
    job(farm, a, book(1, 40))
    dispatch(farm, slots=4)
    assert len(sent(burst)) == 8 and dispatch(farm, slots=4).sent == 0
    page = job(farm, b, "A short page. It has two chunks in all, at most.")
    tick = dispatch(farm, slots=4)
    assert tick.urgent == tick.sent >= 1
    assert {(m[0], m[2]) for m in sent(burst)} == {(page, True)}  # urgent: ahead on the queue


def test_one_dispatcher_at_a_time(burst, farm):
    job(farm, tenant(farm, "a"), book(1, 5))
    url = make_url(farm.settings.database.url).set(drivername="postgresql")
    with psycopg.connect(url.render_as_string(hide_password=False)) as other:
        other.execute("SELECT pg_advisory_lock(%s)", (LOCK,))
        assert dispatch(farm, slots=10).took_turn is False
        assert sent(burst) == []
        other.execute("SELECT pg_advisory_unlock(%s)", (LOCK,))
    assert dispatch(farm, slots=10).sent == 6  # the title and five sentences


def test_a_broker_that_lost_its_messages_gets_the_untaken_chunks_again(burst, farm):
    book_id = job(farm, tenant(farm, "a"), book(1, 8))
    dispatch(farm, slots=2)
    first = sent(burst)  # four on the queue
    generate(burst, first[:1])  # one generated; the queue loses the other three
    with farm.sessions() as session:  # one of them taken by a worker that is still at it
        session.execute(
            update(Chunk)
            .where(Chunk.job_id == book_id, Chunk.index == first[1][1])
            .values(taken_at=utcnow())
        )
    burst.sender.window_lost = lambda: True
    tick = dispatch(farm, slots=2)
    assert tick.returned == 2  # the one in an engine stays where it is
    again = {m[1] for m in sent(burst)}
    assert len(again) == 3 and {m[1] for m in first[2:]} <= again  # and one into the room


def test_gpu_workers_size_the_window_while_they_beat(burst, farm):
    register_gpu_worker(farm, "gpu@one", 72)
    register_gpu_worker(farm, "gpu@two", 8)
    register_gpu_worker(farm, "gpu@two", 4)  # a beat updates its row
    with farm.sessions() as session:
        assert live_slots(session, heartbeat_s=5) == 76
        session.execute(
            update(GpuWorker)
            .where(GpuWorker.name == "gpu@one")
            .values(seen_at=utcnow().replace(year=2000))
        )
        assert live_slots(session, heartbeat_s=5) == 4  # a silent worker is gone
    forget_gpu_worker(farm, "gpu@two")
    job(farm, tenant(farm, "a"), book(1, 5))
    assert dispatch(farm).window == 0 and sent(burst) == []  # no worker, nothing on the queue


def test_books_submitted_together_start_together_and_short_jobs_never_wait(
    burst, farm, monkeypatch
):
    """The gathering pause is long here (10 s), so that a slow machine stays inside it, and
    the dispatcher's clock is moved past it rather than waited for."""
    dispatching = farm.settings.dispatch.model_copy(update={"gather_s": 10.0})
    farm.settings = farm.settings.model_copy(update={"dispatch": dispatching})
    register_gpu_worker(farm, "gpu@here", 10)
    a, b = tenant(farm, "a"), tenant(farm, "b")
    first = job(farm, a, book(1, 20))
    page = job(farm, b, "A page of two sentences. The second one.")
    assert {m[0] for m in sent(burst)} == set() and dispatch(farm).sent >= 1
    assert {m[0] for m in sent(burst)} == {page}  # the book waits for others to come
    second = job(farm, b, book(1, 20))
    dispatch(farm)
    assert sent(burst) == []  # a second book came within gather_s: both still wait
    later = utcnow() + timedelta(seconds=10.1)
    monkeypatch.setattr("shared.farm.dispatch.utcnow", lambda: later)
    dispatch(farm)
    owners = [m[0] for m in sent(burst)]
    assert abs(owners.count(first) - owners.count(second)) <= 1  # side by side


def test_a_chunk_taken_from_a_stale_message_counts_in_the_window(burst, farm):
    """Its lease ran out on the queue (the reconciler gave it back to Postgres), and a worker
    took its message after all: it is in an engine, so it is in the window, not sent again."""
    book_id = job(farm, tenant(farm, "a"), book(1, 4))
    dispatch(farm, slots=1)
    (stale, *_) = sent(burst)
    with farm.sessions() as session:
        session.execute(update(Chunk).where(Chunk.job_id == book_id).values(sent_at=None))
    with farm.bookkeeping() as connection:
        connection.execute(
            CLAIM_PENDING_CHUNK,
            {"job": book_id, "idx": stale[1], "lease": farm.lease(), "at": utcnow()},
        )
    tick = dispatch(farm, slots=1)
    assert stale[1] not in {m[1] for m in sent(burst)}
    assert tick.in_window == 2  # the taken one and one more


def test_an_interactive_job_goes_ahead_of_another_tenants_book(burst, farm):
    """A speech request of 15 chunks, far more than a short job's 4, submitted while another
    tenant's book fills the window: sent urgent, in reading order, the first alone and three
    more at the next tick, then four ahead of its listener (``dispatch.interactive_ahead``: one
    more as each is made), and its decodes and stitches are sent urgent too; the same text as
    an ordinary job waits for room."""
    a, b = tenant(farm, "a"), tenant(farm, "b")
    job(farm, a, book(1, 200))
    dispatch(farm, slots=4)
    assert len(sent(burst)) == 8 and dispatch(farm, slots=4).sent == 0
    text = "\n\n".join(f"Answer paragraph {i} is a sentence on its own." for i in range(15))
    ordinary = job(farm, b, text)
    assert dispatch(farm, slots=4).sent == 0  # 15 chunks: not a short job, no room for it
    speech = submit(farm, b, JobCreate(text=text), None, interactive=True).id
    tick = dispatch(farm, slots=4)
    assert tick.urgent == tick.sent == 1 and tick.again  # its first alone, the next at once
    tick = dispatch(farm, slots=4)
    assert tick.urgent == tick.sent == 3 and not tick.again
    messages = sent(burst)
    while len(messages) < 15:
        burst.run(("generate", *messages[-4]))  # the oldest of the four in the window
        assert dispatch(farm, slots=4).sent == 1
        messages += sent(burst)
    assert {(m[0], m[2]) for m in messages} == {(speech, True)}
    assert [m[1] for m in messages] == list(range(15))  # in reading order, not longest first
    assert ordinary not in {m[0] for m in messages}
    messages = messages[-4:]  # the rest were made above
    urgent_sends = []
    for kind in ("decode", "stitch_chapter", "stitch"):
        send = getattr(burst.sender, kind)

        def recorded(job_id, *args, urgent=False, _kind=kind, _send=send):
            urgent_sends.append((_kind, job_id, urgent))
            _send(job_id, *args, urgent=urgent)

        setattr(burst.sender, kind, recorded)
    generate(burst, messages)
    burst.drain(("decode", "chapter", "stitch"))
    assert {kind for kind, *_ in urgent_sends} == {"decode", "stitch_chapter", "stitch"}
    assert all(job_id == speech and urgent for _, job_id, urgent in urgent_sends)
    with farm.sessions() as session:
        assert session.get(Job, speech).status == "succeeded"
