"""A chunk's share of the engine's time: the engine's busy seconds split among the requests
in it at each moment, so that a full batch is not counted once per chunk."""

from __future__ import annotations

import asyncio
import time

import pytest

from shared.speech.engine import Engine, Speech, SpeechRequest
from shared.speech.metering import EngineClock


class Sleeper(Engine):
    name, voices = "sleeper", ("tara",)

    async def generate(self, request: SpeechRequest) -> Speech:
        await asyncio.sleep(float(request.text))
        return Speech(tokens=7)


def request(seconds: float) -> SpeechRequest:
    return SpeechRequest(f"r{seconds}", str(seconds), "tara", 0)


async def staggered(clock: EngineClock) -> tuple[list[Speech], float]:
    """A in the engine for 0.2 s; B joins 0.1 s in and stays 0.2 s; then C alone for 0.1 s."""
    began = time.monotonic()
    a = asyncio.create_task(clock.generate(request(0.2)))
    await asyncio.sleep(0.1)
    b = asyncio.create_task(clock.generate(request(0.2)))
    first = await asyncio.gather(a, b)
    busy = time.monotonic() - began
    began = time.monotonic()
    c = await clock.generate(request(0.1))
    return [*first, c], busy + time.monotonic() - began


def test_the_shares_split_the_engines_busy_time_among_the_requests_in_it():
    (a, b, c), busy = asyncio.run(staggered(EngineClock(Sleeper())))
    assert a.tokens == 7  # the engine's own answer, with its share
    # each was alone for 0.1 s and shared 0.1 s with the other; C was alone
    assert a.engine_s == pytest.approx(0.15, abs=0.02)
    assert b.engine_s == pytest.approx(0.15, abs=0.02)
    assert c.engine_s == pytest.approx(0.10, abs=0.02)
    # summed, they are the time the engine had work, however the timers slipped
    assert a.engine_s + b.engine_s + c.engine_s == pytest.approx(busy, abs=0.005)


def test_a_request_that_fails_leaves_no_share_behind():
    class Failing(Sleeper):
        async def generate(self, request: SpeechRequest) -> Speech:
            raise RuntimeError("out of memory")

    clock = EngineClock(Failing())
    with pytest.raises(RuntimeError):
        asyncio.run(clock.generate(request(0.1)))
    assert clock.shares == {}
