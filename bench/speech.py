"""A speech request's latency through OpenAI's endpoint, measured on the native farm with the
simulated GPU: on an idle farm, and behind another tenant's book queued just before it.

    python bench/speech.py [--book-chunks 200] [--runs 3]

Starts the farm as ``bench/fairness.py`` does, with its code (its database, its own Redis
server, ``LYRE_ENGINE=simulated``: a continuous-batching engine of 64 sequences at 12 ms a
step, a gpu worker of 72 threads). The request is OpenAI's Python client's
``client.audio.speech.with_streaming_response.create`` with an answer of about 1,400 characters
(MP3, streamed): its time to the first byte (the headers come with the first audio) and to
the last. Every run starts from an idle farm:

(a) the request alone, ``--runs`` times;
(b) another tenant's book of ``--book-chunks`` chunks (about 100 characters each, 6.6 s in the
    batch), and ``--after-s`` after its chunks have started in the engine (the book is
    running), the request; ``--runs`` times, the book cancelled after each. The engine does not
    preempt: the request's chunks, first on the queue, start as book chunks leave the batch.
    This book's chunks are all alike and start together, so they leave together, a chunk's
    time after they started: the worst case for a newcomer, which waits that time less
    ``--after-s``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fairness import DB, Farm, paragraphs, start
from openai import OpenAI

from shared.infra.db import dispose_engines
from shared.infra.settings import get_settings
from shared.text.chunking import chunk_text
from workers.bootstrap import ensure_database

ANSWER = (
    "The lighthouse stood on the last rock before the open sea, and its keeper climbed the "
    "stairs every evening. He trimmed the wick, polished the great lens, and wrote the weather "
    "in a book that nobody read. Ships passed in the night and never knew his name. When the "
    "storm came in October, the light was the only thing on that coast that did not move. In "
    "the morning the harbour counted its boats and found them all. Nobody thanked the keeper, "
    "and he did not expect it; he went to sleep, and in the evening he climbed the stairs again. "
    "Years went by in the same way. The keeper's hair turned grey, the paint on the tower "
    "peeled and was painted again, and the book of weather filled and was replaced by another. "
    "Children from the village came to ask him about the ships, and he told them what he knew: "
    "the names of the lights along the coast, the way the fog rolls in before the tide turns, "
    "the sound a bell buoy makes when the wind is from the north. One of them, a girl who "
    "asked more questions than the others, came back every summer. When the keeper could no "
    "longer climb the stairs, she climbed them for him, and he sat at the bottom and called "
    "out the steps he knew by heart: trim the wick, polish the lens, write down the weather. "
    "The light has been electric for many years now, and nobody lives in the tower; but on "
    "stormy nights the people of the village still look out to sea and say his name."
)


def speak(client: OpenAI) -> tuple[float, float, int]:
    """(seconds to the first byte, seconds to the last, bytes) of one streamed request."""
    began = time.perf_counter()
    first, size = None, 0
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=ANSWER, response_format="mp3"
    ) as response:
        for data in response.iter_bytes():
            first = first or time.perf_counter()
            size += len(data)
    assert first is not None and size, "no audio came back"
    return first - began, time.perf_counter() - began, size


def summary(name: str, runs: list[tuple[float, float, int]]) -> tuple[float, float]:
    firsts, wholes = [r[0] for r in runs], [r[1] for r in runs]
    print(
        f"{name}: first byte {', '.join(f'{s:.2f}' for s in firsts)} s (median "
        f"{statistics.median(firsts):.2f}); whole response {', '.join(f'{s:.2f}' for s in wholes)}"
        f" s (median {statistics.median(wholes):.2f}); {runs[0][2]} bytes of MP3",
        flush=True,
    )
    return statistics.median(firsts), statistics.median(wholes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--book-chunks", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--after-s", type=float, default=1.0, help="the book running this long")
    parser.add_argument("--logs", type=Path, help="keep the farm's logs in this folder")
    args = parser.parse_args()
    chunking = get_settings().chunking  # the api's too: it reads the same environment
    spans = chunk_text(ANSWER, chunking.max_chars, ramp_chars=chunking.interactive_ramp_chars).spans
    ensure_database(DB)
    with tempfile.TemporaryDirectory(prefix="lyre-bench-speech-") as tmp:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            tmp = str(args.logs)
        farm: Farm | None = None
        try:
            farm = start(Path(tmp))
            key = farm.key("listener")["Authorization"].removeprefix("Bearer ")
            client = OpenAI(base_url=f"{farm.api}/v1", api_key=key, max_retries=0, timeout=300)
            print(
                "simulated engine: 64 sequences, 12 ms a step; gpu worker 72 threads; the "
                f"answer: {len(ANSWER)} characters in {len(spans)} chunks of "
                f"{', '.join(str(len(s.text)) for s in spans)} characters (ramp from "
                f"{chunking.interactive_ramp_chars})",
                flush=True,
            )
            idle = []
            for _ in range(args.runs):
                idle.append(speak(client))
                farm.drain()
            alone = summary("(a) idle farm", idle)
            other = farm.key("publisher")
            behind = []
            for _ in range(args.runs):
                book_id, _ = farm.submit(other, paragraphs(args.book_chunks, "Book"))
                farm.wait(other, book_id, lambda job: job["status"] == "running", poll_s=0.02)
                time.sleep(args.after_s)
                behind.append(speak(client))
                farm.cancel((other, book_id))
            book = f"another tenant's {args.book_chunks}-chunk book"
            queued = summary(f"(b) {args.after_s:g} s after {book} started", behind)
            print(
                f"behind the book / idle: first byte {queued[0] / alone[0]:.2f}x, whole "
                f"response {queued[1] / alone[1]:.2f}x",
                flush=True,
            )
            client.close()
        finally:
            if farm is not None:
                farm.stop()
            dispose_engines()


if __name__ == "__main__":
    main()
