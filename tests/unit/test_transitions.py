"""Each compare-and-set statement in shared.farm.transitions and shared.webhooks.delivery takes
the edge its name says, and every edge of the transition tables has its statement."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy.sql import visitors
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, Grouping

from shared.farm import reconcile, transitions
from shared.farm.states import (
    ACTIVE,
    CHAPTER_TRANSITIONS,
    CHUNK_TRANSITIONS,
    JOB_TRANSITIONS,
    WAITING,
    ChapterStatus,
    ChunkStatus,
    JobStatus,
)
from shared.infra.models import Chapter, Chunk, Job, WebhookDelivery
from shared.webhooks import delivery
from shared.webhooks.outbox import DELIVERY_TRANSITIONS, DeliveryStatus

MODULES = (transitions, reconcile, delivery)
STATEMENTS = {
    name: value
    for module in MODULES
    for name, value in vars(module).items()
    if isinstance(value, Update)
}
EDGE = re.compile(r"(JOB|CHUNK|CHAPTER|DELIVERY)_([A-Z]+)_TO_([A-Z]+)")
GROUPS = {"ACTIVE": ACTIVE, "WAITING": WAITING}
TABLES: dict[str, tuple[Any, type, Any]] = {
    "JOB": (Job.__table__.c.status, JobStatus, JOB_TRANSITIONS),
    "CHUNK": (Chunk.__table__.c.status, ChunkStatus, CHUNK_TRANSITIONS),
    "CHAPTER": (Chapter.__table__.c.status, ChapterStatus, CHAPTER_TRANSITIONS),
    "DELIVERY": (WebhookDelivery.__table__.c.status, DeliveryStatus, DELIVERY_TRANSITIONS),
}
EDGES = {name: value for name, value in STATEMENTS.items() if EDGE.fullmatch(name)}
LEASES = {
    name: value
    for name, value in STATEMENTS.items()
    if name.startswith(("CLAIM_", "RESEND_", "RENEW_", "COUNT_", "RETRY_"))
}


def where_statuses(statement: Any, column: Any) -> set[str]:
    """The statuses a statement's WHERE compares ``column`` with (= or IN)."""
    found: set[str] = set()
    for node in visitors.iterate(statement.whereclause):
        if not isinstance(node, BinaryExpression) or not _is(node.left, column):
            continue
        right = node.right.element if isinstance(node.right, Grouping) else node.right
        assert isinstance(right, BindParameter), f"status compared with {right!r}"
        value = right.value
        found |= {str(v) for v in value} if isinstance(value, list | tuple) else {str(value)}
    return found


def _is(expression: Any, column: Any) -> bool:
    """Whether ``expression`` is ``column`` (the ORM hands out annotated copies of it)."""
    table = getattr(expression, "table", None)
    return getattr(expression, "name", None) == column.name and getattr(table, "name", None) == (
        column.table.name
    )


def set_status(statement: Any) -> str | None:
    values = {column.key: value for column, value in statement._values.items()}
    status = values.get("status")
    return None if status is None else str(status.value)


@pytest.mark.parametrize("name", sorted(EDGES))
def test_each_statement_takes_the_edge_its_name_says(name: str) -> None:
    kind, source, target = EDGE.fullmatch(name).groups()  # type: ignore[union-attr]
    column, states, table = TABLES[kind]
    statement = EDGES[name]
    sources = (states[source],) if source in states.__members__ else GROUPS[source]
    assert set_status(statement) == states[target].value
    assert where_statuses(statement, column) == {s.value for s in sources}
    assert set(sources) <= set(table[states[target]]), f"{name} is not an edge of the table"


def test_every_edge_of_the_tables_has_its_statement() -> None:
    """Every (source, target) pair of each table is taken by some statement."""
    taken = set()
    for name in EDGES:
        kind, source, target = EDGE.fullmatch(name).groups()  # type: ignore[union-attr]
        _, states, _ = TABLES[kind]
        sources = (states[source],) if source in states.__members__ else GROUPS[source]
        taken |= {(kind, s.value, states[target].value) for s in sources}
    assert taken == {
        (kind, source.value, target.value)
        for kind, (_, _, table) in TABLES.items()
        for target, sources in table.items()
        for source in sources
    }
    assert set(transitions.JOB_EDGES) == set(JOB_TRANSITIONS)


@pytest.mark.parametrize("name", sorted(LEASES))
def test_leases_and_counters_never_change_a_status(name: str) -> None:
    assert set_status(LEASES[name]) is None


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_no_other_statement_in_the_modules_sets_a_status(module: Any) -> None:
    """Any UPDATE in the module that sets a status is named as an edge."""
    for name, value in vars(module).items():
        if isinstance(value, Update) and set_status(value) is not None:
            assert name in EDGES and EDGES[name] is value, name
