"""A load generator for one HTTP endpoint, for ``bench/api.py``: keep-alive connections, each
sending its next GET as soon as it has read the last answer, for a fixed time after a warm-up.

It runs in processes of its own, so that its CPU is not the server's. Each connection speaks
HTTP/1.1 over asyncio streams (uvloop) and reads only the status line, ``content-length`` and
the body: a few tens of microseconds of CPU per request, so that one loader process drives
thousands of requests a second and the server, not the loader, sets the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from urllib.parse import urlsplit


@dataclass
class Load:
    """What the loaders saw between the end of the warm-up and the end of the run."""

    seconds: float
    latencies_s: list[float] = field(default_factory=list)  # of the 200 answers
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def per_s(self) -> float:
        return len(self.latencies_s) / self.seconds

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def _connection(
    host: str, port: int, request: bytes, warm_until: float, end: float, load: Load
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (started := time.monotonic()) < end:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            done = time.monotonic()
            if warm_until <= done <= end:
                status = int(head[9:12])
                load.statuses[status] += 1
                if status == 200:
                    load.latencies_s.append(done - started)
    finally:
        writer.close()


def _content_length(head: bytes) -> int:
    for line in head.lower().split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    raise ValueError(f"an answer without content-length: {head[:200]!r}")


async def _connections(
    url: str, headers: dict[str, str], clients: int, start: float, at: float, load: Load
) -> None:
    parts = urlsplit(url)
    lines = [f"GET {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    await asyncio.sleep(max(0.0, start - time.monotonic()))
    end = at + load.seconds
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    await asyncio.gather(*(_connection(host, port, request, at, end, load) for _ in range(clients)))


def _drive(
    url: str,
    headers: dict[str, str],
    clients: int,
    times: tuple[float, float, float],
    cpus: set[int],
) -> Load:
    """One loader process: ``clients`` connections from ``start``, measuring from ``at`` for
    ``seconds`` (``times``; monotonic, which every process on the machine shares), on
    ``cpus`` (all where empty)."""
    import os

    import uvloop

    if cpus:
        os.sched_setaffinity(0, cpus)
    start, at, seconds = times
    load = Load(seconds)
    uvloop.run(_connections(url, headers, clients, start, at, load))
    return load


@dataclass(frozen=True)
class Plan:
    clients: int  # connections in all, each with one request in flight
    loaders: int  # processes they are spread over
    warmup_s: float
    seconds: float
    cpus: frozenset[int] = frozenset()  # where the loaders run; anywhere when empty


def start_load(pool: ProcessPoolExecutor, url: str, headers: dict[str, str], plan: Plan):
    """Start the loaders; returns when measuring starts (monotonic) and their futures."""
    start = time.monotonic() + 1.0  # for the loader processes to start
    times = (start, start + plan.warmup_s, plan.seconds)
    count, extra = divmod(plan.clients, plan.loaders)
    shares = [count + (i < extra) for i in range(plan.loaders)]
    futures = [
        pool.submit(_drive, url, headers, share, times, set(plan.cpus)) for share in shares if share
    ]
    return times[1], futures


def merged(loads: list[Load]) -> Load:
    total = Load(loads[0].seconds)
    for load in loads:
        total.latencies_s += load.latencies_s
        total.statuses += load.statuses
    return total


def loader_pool(loaders: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(loaders, mp_context=get_context("spawn"))
