"""Seats kept in a batching engine for the chunks someone is waiting on.

A continuous-batching engine runs at most ``max_num_seqs`` chunks; a newcomer waits for one to
leave. vLLM 0.33's priority policy orders only the waiting queue: at ``max_num_seqs`` it admits
nothing and preempts nobody for a higher priority (``vllm/v1/core/sched/scheduler.py``, the
waiting loop's ``if num_running >= self.max_num_active_reqs: break``). So behind another
tenant's book an urgent chunk (a speech request's, a short job's) would wait for a book chunk
to finish, seconds. Here books may hold at most ``max_num_seqs - orpheus.urgent_seats`` of the
engine's sequences; the rest are kept free for urgent chunks, which go in at once. The cost is
the kept seats' share of the engine's tokens while no urgent chunk uses them
(``bench/speech.py`` measures both).

The gpu worker's threads are shared out to match (:func:`book_slots`): the dispatcher's window
of book chunks never takes the threads the urgent chunks need to reach their seats.
"""

from __future__ import annotations

import asyncio
import math

from shared.infra.settings import Settings
from shared.speech.engine import Engine, Speech, SpeechRequest


def batching(settings: Settings, name: str | None = None) -> bool:
    """Whether the engine ``name`` (the farm's, by default) batches many chunks (the simulated
    engine, Orpheus on vLLM or on a completion server), not one at a time."""
    from shared.speech.factory import resolve_engine_name

    name = name or resolve_engine_name(settings)[0]
    return name == "simulated" or (name == "orpheus" and settings.orpheus.backend != "transformers")


def gpu_concurrency(settings: Settings) -> int:
    """Chunks a gpu worker holds at once: a batching engine's ``max_num_seqs`` and an eighth
    more (the batch stays full while threads fetch their next chunk: bench/batching.py); two
    for an engine that makes one chunk at a time."""
    seqs = settings.orpheus.max_num_seqs
    return seqs + seqs // 8 if batching(settings) else 2


def book_slots(settings: Settings, threads: int) -> int:
    """What a gpu worker of ``threads`` tells the dispatcher it holds for books: so few that
    the window (``dispatch.window_per_slot`` per slot, on the queue or in the engine) leaves
    a thread for each urgent seat."""
    seats = settings.orpheus.urgent_seats if batching(settings) else 0
    if not seats:
        return threads
    return max(1, math.floor((threads - seats) / settings.dispatch.window_per_slot))


class EngineSeats(Engine):
    """``engine`` with ``urgent_seats`` of its ``max_num_seqs`` kept for urgent requests."""

    def __init__(self, engine: Engine, max_num_seqs: int, urgent_seats: int) -> None:
        self.engine, self.name, self.voices = engine, engine.name, engine.voices
        self.books = asyncio.Semaphore(max(1, max_num_seqs - urgent_seats))  # on the engine's loop

    async def generate(self, request: SpeechRequest) -> Speech:
        if request.urgent:
            return await self.engine.generate(request)
        async with self.books:
            return await self.engine.generate(request)

    async def aclose(self) -> None:
        await self.engine.aclose()

    def dead(self) -> bool:
        return self.engine.dead()
