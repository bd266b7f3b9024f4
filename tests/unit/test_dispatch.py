"""The dispatch policy (``shared.farm.dispatch.plan``), on its own."""

from __future__ import annotations

import uuid
from collections import Counter
from types import SimpleNamespace

from shared.farm.dispatch import Candidate, TenantQueue, _admitted, _gathering, _Waiting, plan
from shared.infra.models import utcnow


def queue(name: str, n: int, weight: float = 1.0, held: int = 0, short: int = 0) -> TenantQueue:
    """A tenant with a book of ``n`` chunks waiting and ``short`` urgent ones (a short or an
    interactive job's)."""
    tenant = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    book, page = uuid.uuid5(tenant, "book"), uuid.uuid5(tenant, "page")
    chunks = [Candidate(page, i, True) for i in range(short)]
    chunks += [Candidate(book, i, False) for i in range(n)]
    return TenantQueue(tenant, weight, held, chunks)


def shares(picks: list[Candidate], *queues: TenantQueue) -> list[int]:
    owner = {c: q.tenant_id for q in queues for c in q.candidates}
    counts = Counter(owner[c] for c in picks)
    return [counts[q.tenant_id] for q in queues]


def test_equal_tenants_split_the_room_evenly_and_alternate():
    a, b = queue("a", 100), queue("b", 100)
    picks = plan(10, [a, b])
    assert shares(picks, a, b) == [5, 5]
    assert [c.index for c in picks] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # each in its own order


def test_weights_share_the_room_and_what_is_held_counts():
    a, b = queue("a", 100, weight=3), queue("b", 100)
    assert shares(plan(40, [a, b]), a, b) == [30, 10]
    # b already holds 20 of the window: a catches up first
    a, b = queue("a", 100), queue("b", 100, held=20)
    assert shares(plan(30, [a, b]), a, b) == [25, 5]


def test_a_tenant_with_little_to_send_leaves_the_rest_to_others():
    a, b = queue("a", 2), queue("b", 100)
    assert shares(plan(10, [a, b]), a, b) == [2, 8]


def test_short_jobs_go_first_whatever_the_room():
    a, b = queue("a", 100, held=64), queue("b", 0, short=3)
    picks = plan(0, [a, b])
    assert [c.urgent for c in picks] == [True] * 3
    picks = plan(5, [a, b])
    assert [c.urgent for c in picks[:3]] == [True] * 3 and len(picks) == 5


def test_short_chunks_count_against_their_tenants_share():
    a, b = queue("a", 100), queue("b", 100, short=4)
    picks = plan(12, [a, b])
    assert shares(picks, a, b) == [6, 6]  # b's four short ones and two of its book's


def test_no_room_no_book_chunks():
    assert plan(0, [queue("a", 10)]) == []
    assert plan(-3, [queue("a", 10)]) == []


def test_an_interactive_jobs_fifteen_chunks_go_ahead_of_a_full_window_of_books():
    a, b = queue("a", 500, held=80), queue("b", 0, short=15)  # b's 15 chunks: a speech request
    picks = plan(0, [a, b])
    assert len(picks) == 15 and all(c.urgent for c in picks)
    assert [c.index for c in picks] == list(range(15))  # in its own order


def waiting(name: str, status: str, pending: int, interactive: bool = False) -> _Waiting:
    urgent = interactive or pending <= 4
    return _Waiting(uuid.uuid5(uuid.NAMESPACE_DNS, name), status, pending, urgent, interactive)


def test_a_tenants_interactive_job_is_admitted_and_sent_before_its_own_books():
    book, older = waiting("book", "running", 300), waiting("older", "queued", 300)
    speech = waiting("speech", "queued", 15, interactive=True)
    admitted = _admitted([book, older, speech], limit=3)
    assert [job.id for job in admitted] == [speech.id, book.id, older.id]
    # its limit of jobs running at once still counts: a speech request waits for its turn
    assert [job.id for job in _admitted([book, older, speech], limit=2)] == [book.id, older.id]


def test_books_gather_but_an_interactive_job_never_waits():
    now = utcnow()
    rows = [
        SimpleNamespace(
            id=uuid.uuid4(), status="queued", pending=300, interactive=False, created_at=now
        ),
        SimpleNamespace(
            id=uuid.uuid4(), status="queued", pending=15, interactive=True, created_at=now
        ),
    ]
    held = _gathering(rows, short_at=4, gather_s=0.5)
    assert held == {rows[0].id}
