"""Liveness, readiness and Prometheus metrics (no authentication: for probes and scrapers)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text

from api.deps import FarmDep, process_farm
from api.errors import DependencyDown
from api.problems import PROBLEM_JSON, Unready, problem_body, responses
from shared.farm.context import FarmContext
from shared.farm.gpu_workers import live_slots
from shared.farm.states import ACTIVE, WAITING, ChunkStatus, JobStatus
from shared.farm.usage import usage_by_tenant
from shared.infra import queues
from shared.infra.models import Chunk, Job, Tenant

router = APIRouter()
RECENT_CHUNKS = 1000


def redis_client(farm: FarmContext):
    return queues.redis_client(farm.settings.redis.url, timeout_s=2)


def queue_depths(farm: FarmContext) -> dict[str, int]:
    """Messages waiting per queue, Celery's priority sub-lists included."""
    lists = {
        name: queues.queue_lists(farm.settings.redis.key_prefix, name) for name in queues.QUEUES
    }
    pipeline = redis_client(farm).pipeline(transaction=False)
    for keys in lists.values():
        for key in keys:
            pipeline.llen(key)
    lengths = iter(pipeline.execute())  # one round trip for every list
    return {name: sum(next(lengths) for _ in keys) for name, keys in lists.items()}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=responses(DependencyDown, model=Unready))
def readyz(farm: FarmDep) -> JSONResponse:
    """Whether Postgres, Redis and the object store answer; a 503 names those that do not."""

    def postgres() -> None:
        with farm.sessions() as session:
            session.execute(text("SELECT 1"))

    checks = {
        "postgres": postgres,
        "redis": lambda: redis_client(farm).ping(),
        "s3": farm.store.check,
    }
    failing = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # readiness reports any failure by name
            failing[name] = f"{type(exc).__name__}: {exc}"[:300]
    if failing:
        down = DependencyDown(f"not ready: {', '.join(failing)} failing")
        body = {**problem_body(down), "failing": failing}
        return JSONResponse(body, 503, headers=down.headers, media_type=PROBLEM_JSON)
    return JSONResponse({"status": "ready"})


class FarmCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        farm = process_farm()
        jobs = GaugeMetricFamily("lyre_jobs", "Jobs by status", labels=["status"])
        stages = GaugeMetricFamily(
            "lyre_chunk_stage_seconds",
            "Per-chunk stage time over recent chunks",
            labels=["stage", "quantile"],
        )
        with farm.sessions() as session:
            counts = dict(
                session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
            )
            recent = session.execute(
                select(Chunk.generate_s, Chunk.decode_s)
                .where(Chunk.done_at.is_not(None))
                .order_by(Chunk.done_at.desc())
                .limit(RECENT_CHUNKS)
            ).all()
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        for stage, column in (("generate", 0), ("decode", 1)):
            values: list[float] = sorted(v for row in recent if (v := row[column]) is not None)
            if len(values) >= 2:
                cuts = statistics.quantiles(values, n=100, method="inclusive")
                for q, value in (("0.5", cuts[49]), ("0.9", cuts[89]), ("0.99", cuts[98])):
                    stages.add_metric([stage, q], value)
        depth = GaugeMetricFamily(
            "lyre_queue_depth", "Messages waiting per queue (Redis)", labels=["queue"]
        )
        for name, count in queue_depths(farm).items():
            depth.add_metric([name], count)
        yield from (jobs, stages, depth, *chunk_metrics(farm), *usage_metrics(farm))


USAGE_METRICS = (  # (name, help, Usage's field)
    ("lyre_tenant_characters", "Characters submitted, by tenant", "chars"),
    ("lyre_tenant_audio_seconds", "Seconds of speech made by ended jobs, by tenant", "audio_s"),
    ("lyre_tenant_engine_seconds", "Speech engine (GPU) seconds of ended jobs", "engine_s"),
    ("lyre_tenant_cpu_seconds", "CPU seconds of ended jobs (decode, stitch, encode)", "cpu_s"),
    ("lyre_tenant_stored_bytes", "Bytes ended jobs wrote to the object store", "stored_bytes"),
)


def usage_metrics(farm: FarmContext) -> Iterator[CounterMetricFamily]:
    """Each tenant's use over its history (``tenant_usage``, what ``GET /v1/usage`` reads)."""
    with farm.sessions() as session:
        used = usage_by_tenant(session)
    for name, text_help, field in USAGE_METRICS:
        counter = CounterMetricFamily(name, text_help, labels=["tenant"])
        for tenant, usage in sorted(used.items()):
            counter.add_metric([tenant], getattr(usage, field))
        yield counter


def chunk_metrics(farm: FarmContext) -> Iterator[GaugeMetricFamily]:
    """Chunks of active jobs by tenant: waiting per queue (gpu: not yet taken by a gpu worker,
    in Postgres or on the queue; cpu: generated, waiting for decode), the dispatcher's window
    (sent, not yet generated), and the live gpu workers' slots."""
    waiting = GaugeMetricFamily(
        "lyre_chunks_waiting",
        "Chunks of active jobs waiting, by tenant and queue (Postgres: what KEDA scales on)",
        labels=["tenant", "queue"],
    )
    window = GaugeMetricFamily(
        "lyre_dispatch_window_chunks",
        "Chunks the dispatcher has sent to the GPUs and not yet generated, by tenant",
        labels=["tenant"],
    )
    taken, sent = Chunk.taken_at.is_not(None), Chunk.sent_at.is_not(None)
    counts = (
        select(Tenant.name, Chunk.status, taken, sent, func.count())
        .join(Job, Job.tenant_id == Tenant.id)
        .join(Chunk, Chunk.job_id == Job.id)
        .where(Job.status.in_(ACTIVE), Chunk.status.in_(WAITING))
        .group_by(Tenant.name, Chunk.status, taken, sent)
    )
    with farm.sessions() as session:
        rows = session.execute(counts).all()
        slots = live_slots(session, farm.settings.dispatch.heartbeat_s)
    by_queue: dict[tuple[str, str], int] = defaultdict(int)
    in_window: dict[str, int] = defaultdict(int)
    for tenant, status, was_taken, was_sent, n in rows:
        if status == ChunkStatus.GENERATED:
            by_queue[tenant, "cpu"] += n
            continue
        if not was_taken:
            by_queue[tenant, "gpu"] += n
        if was_sent:
            in_window[tenant] += n
    for (tenant, queue), n in sorted(by_queue.items()):
        waiting.add_metric([tenant, queue], n)
    for tenant, n in sorted(in_window.items()):
        window.add_metric([tenant], n)
    gpu_slots = GaugeMetricFamily(
        "lyre_gpu_slots", "Chunks the live gpu workers hold at once, all together"
    )
    gpu_slots.add_metric([], slots)
    yield from (waiting, window, gpu_slots)


_registry = CollectorRegistry()
_registry.register(FarmCollector())


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **responses(DependencyDown),
    },
)
def metrics() -> Response:
    """Prometheus's text format."""
    return Response(generate_latest(_registry), media_type=CONTENT_TYPE_LATEST)
