"""A listener's wait for the first sound, measured on the native farm with the simulated GPU:
OpenAI's endpoint on an idle farm for a sentence, an answer and 4,000 characters; behind another
tenant's book; the WebSocket with fifty paragraphs streamed in; and what the seats kept for
urgent chunks cost a book.

    python bench/speech.py [--book-chunks 200] [--runs 3] [--after-s 1.0]

The farm is ``bench/fairness.py``'s (its database, its own Redis server) with
``LYRE_ENGINE=simulated`` making SNAC codes (``LYRE_SIMULATED__CODES``): a continuous-batching
engine of 64 sequences at 12 ms a step, 8 of them kept for urgent chunks, a gpu worker of 72
threads, and a random SNAC of the real size decoding, so that the api's live decode
and the cpu workers' decodes cost what Orpheus's do. Each request is OpenAI's Python client's
``with_streaming_response.create`` (or a ``websockets`` client): its time to the first byte of
audio (the headers come with it) and to the last.

Targets (issue 29): the first byte within the engine's time for the first 28 tokens (4 SNAC
frames, 28 × 12 ms) plus 150 ms on an idle farm, the same (±10 %) whatever the text's length,
over the WebSocket too, and within 2× of idle behind another tenant's book.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import websockets
from fairness import DB, Farm, paragraphs, start
from openai import OpenAI
from streams import snac_checkpoint

from shared.infra.db import dispose_engines
from shared.speech.engine import SpeechRequest
from shared.speech.seats import EngineSeats
from shared.speech.simulated import SimulatedEngine
from workers.bootstrap import ensure_database

STEP_S = 0.012
LISTEN_S = 5.0  # of the WebSocket's audio, then hang up
SENTENCE = "The lighthouse stood on the last rock before the open sea, facing the storm."
STORY = paragraphs(60, "Story")  # about 100 characters a paragraph


def speak(client: OpenAI, text: str, fmt: str = "mp3") -> tuple[float, float, int]:
    """(seconds to the first byte, seconds to the last, bytes) of one streamed request."""
    began = time.perf_counter()
    first, size = None, 0
    with client.audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=text,
        response_format=fmt,  # type: ignore[arg-type]
    ) as response:
        for data in response.iter_bytes():
            first = first or time.perf_counter()
            size += len(data)
    assert first is not None and size, "no audio came back"
    return first - began, time.perf_counter() - began, size


async def converse(url: str, key: str, text: str) -> tuple[float, float, int]:
    """The WebSocket: ``text`` sent word by word as fast as the socket takes it (a fast model
    writing), the audio read meanwhile, for ``LISTEN_S`` after the first; (seconds from the
    first text to the first PCM, to the hang-up, bytes). The jobs made go on; the farm is
    drained after."""
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        await ws.send(json.dumps({"type": "start", "voice": "tara"}))
        began = time.perf_counter()

        async def write() -> None:
            for word in text.split(" "):
                await ws.send(json.dumps({"type": "text", "text": word + " "}))

        writing = asyncio.create_task(write())
        first, size = None, 0
        async for message in ws:
            if isinstance(message, bytes):
                first = first or time.perf_counter()
                size += len(message)
                if time.perf_counter() - first > LISTEN_S:
                    break
        writing.cancel()
    assert first is not None and size, "no audio came back"
    return first - began, time.perf_counter() - began, size


def summary(name: str, runs: list[tuple[float, float, int]]) -> float:
    firsts, wholes = [r[0] for r in runs], [r[1] for r in runs]
    print(
        f"{name}: first byte {', '.join(f'{s * 1000:.0f}' for s in firsts)} ms (median "
        f"{statistics.median(firsts) * 1000:.0f}); whole {statistics.median(wholes):.2f} s; "
        f"{runs[0][2]} bytes",
        flush=True,
    )
    return statistics.median(firsts)


def seats_cost(chunks: int = 640, seats: int = 8) -> None:
    """A book's tokens per step in the engine with and without the seats (in process)."""

    def run(kept: int) -> float:
        inner = SimulatedEngine(64, 0.0002, 5.5)
        engine = EngineSeats(inner, 64, kept) if kept else inner

        async def book() -> None:
            requests = [SpeechRequest(f"b{i}", "x" * 100, "tara", i) for i in range(chunks)]
            await asyncio.gather(*(engine.generate(r) for r in requests))

        asyncio.run(book())
        return inner.tokens / len(inner.in_flight)

    full, kept = run(0), run(seats)
    print(
        f"a book alone in the engine: {full:.1f} tokens a step with every seat, {kept:.1f} with "
        f"{seats} of 64 kept for urgent chunks: {100 * (1 - kept / full):.1f} % of its throughput",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-chunks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--after-s", type=float, default=1.0, help="the book running this long")
    parser.add_argument("--logs", type=Path, help="keep the farm's logs in this folder")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # the farm stopped below
    seats_cost()
    ensure_database(DB)
    with tempfile.TemporaryDirectory(prefix="lyre-bench-speech-") as tmp:
        logs = args.logs or Path(tmp)
        logs.mkdir(parents=True, exist_ok=True)
        snac = snac_checkpoint(Path(tmp) / "snac")
        env = {"LYRE_SIMULATED__CODES": "true", "LYRE_ORPHEUS__SNAC_MODEL": str(snac)}
        env["LYRE_CHECKS__ENABLED"] = "false"  # random codes are not speech: no retakes
        env["LYRE_SIMULATED__STEP_MS"] = str(STEP_S * 1000)
        farm: Farm | None = None
        try:
            farm = start(logs, env)
            key = farm.key("listener")["Authorization"].removeprefix("Bearer ")
            client = OpenAI(base_url=f"{farm.api}/v1", api_key=key, max_retries=0, timeout=600)
            target = 28 * STEP_S + 0.150
            print(f"target: first byte <= {target * 1000:.0f} ms (28 tokens at 12 ms + 150 ms)")
            measure(farm, client, key, args, target)
            client.close()
        finally:
            if farm is not None:
                farm.stop()
            dispose_engines()


def measure(farm: Farm, client: OpenAI, key: str, args: argparse.Namespace, target: float) -> None:
    speak(client, SENTENCE)  # a first request: the api's decoding processes are loaded
    farm.drain()
    idle = {}
    for name, text, fmt in (
        ("a sentence (77 characters), mp3", SENTENCE, "mp3"),
        ("a sentence, pcm", SENTENCE, "pcm"),
        ("an answer (1,400 characters), mp3", STORY[:1400], "mp3"),
        ("4,000 characters, mp3", STORY[:4000], "mp3"),
    ):
        runs = []
        for _ in range(args.runs):
            runs.append(speak(client, text, fmt))
            farm.drain()
        idle[name] = summary(f"(a) idle, {name}", runs)
    ws_url = farm.api.replace("http", "ws") + "/v1/audio/speech/ws"
    runs = []
    for _ in range(args.runs):
        runs.append(asyncio.run(converse(ws_url, key, "\n\n".join(STORY.split("\n\n")[:50]))))
        farm.drain()
    idle["websocket"] = summary("(a) idle, WebSocket, fifty paragraphs word by word", runs)
    other, behind = farm.key("publisher"), []
    for _ in range(args.runs):
        book_id, _ = farm.submit(other, paragraphs(args.book_chunks, "Book"))
        farm.wait(other, book_id, lambda job: job["status"] == "running", poll_s=0.02)
        time.sleep(args.after_s)
        behind.append(speak(client, STORY[:1400]))
        farm.cancel((other, book_id))
    queued = summary(
        f"(b) {args.after_s:g} s after a {args.book_chunks}-chunk book started", behind
    )
    worst = max(idle.values())
    spread = (worst - min(idle.values())) / min(idle.values())
    print(
        f"idle: worst first byte {worst * 1000:.0f} ms against {target * 1000:.0f} ms "
        f"({'met' if worst <= target else 'not met'}); spread over lengths and the WebSocket "
        f"{100 * spread:.0f} % ({'met' if spread <= 0.10 else 'not met'}: ±10 %); behind the "
        f"book {queued / idle['an answer (1,400 characters), mp3']:.2f}x idle "
        f"({'met' if queued <= 2 * idle['an answer (1,400 characters), mp3'] else 'not met'}: 2x)",
        flush=True,
    )


if __name__ == "__main__":
    main()
