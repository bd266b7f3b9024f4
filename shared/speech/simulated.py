"""A continuous-batching GPU in miniature, for measuring how the farm feeds one (``bench/``).

Each step of ``simulated.step_ms`` admits waiting chunks up to ``orpheus.max_num_seqs`` and
gives one token to every running chunk, as vLLM's scheduler does; a chunk needs the tokens
Orpheus would spend on its text (``simulated.tokens_per_char``). What comes back is a quiet
tone as long as those tokens' audio, so that decode, stitch and the files are the real ones
without a SNAC model. ``LYRE_ENGINE=simulated``; never chosen by ``auto``.

Each finished chunk is logged with the times it entered and left the batch (``TRACE``): a
benchmark reads from the worker's log how the GPU's tokens were shared.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.speech.codec import FRAME_TOKENS
from shared.speech.engine import Engine, Speech, SpeechRequest
from shared.text.voices import VOICES

SAMPLES_PER_FRAME = 2048  # SNAC 24 kHz: one frame of seven tokens is 2048 samples
TRACE = re.compile(r"simulated (\S+) ran from ([0-9.]+) to ([0-9.]+): ([0-9]+) tokens")

log = logging.getLogger(__name__)


def tokens_for(text: str, tokens_per_char: float) -> int:
    """The tokens a chunk of ``text`` takes: whole frames, at least one."""
    return max(FRAME_TOKENS, round(len(text) * tokens_per_char / FRAME_TOKENS) * FRAME_TOKENS)


class SimulatedEngine(Engine):
    name, voices = "simulated", VOICES

    def __init__(self, max_num_seqs: int, step_s: float, tokens_per_char: float) -> None:
        self.max_num_seqs, self.step_s, self.tokens_per_char = max_num_seqs, step_s, tokens_per_char
        self.waiting: list[list] = []  # [tokens left, tokens total, future, request, started]
        self.running: list[list] = []
        self.in_flight: list[int] = []  # batch size at every step
        self.seen: list[int] = []  # requests received by every step
        self.tokens = 0
        self.requests = 0
        self._stepper: asyncio.Task | None = None

    async def generate(self, request: SpeechRequest) -> Speech:
        need = tokens_for(request.text, self.tokens_per_char)
        self.requests += 1
        future = asyncio.get_running_loop().create_future()
        self.waiting.append([need, need, future, request.request_id, 0.0])
        if self._stepper is None or self._stepper.done():
            self._stepper = asyncio.create_task(self._run())
        await future
        return Speech(pcm=_tone(need // FRAME_TOKENS * SAMPLES_PER_FRAME), tokens=need)

    async def _run(self) -> None:
        while self.waiting or self.running:
            free = self.max_num_seqs - len(self.running)
            for seq in self.waiting[:free]:
                seq[4] = time.time()
            self.running += self.waiting[:free]
            del self.waiting[:free]
            await asyncio.sleep(self.step_s)  # one forward pass, whatever the batch size
            self.in_flight.append(len(self.running))
            self.seen.append(self.requests)
            self.tokens += len(self.running)
            for seq in self.running:
                seq[0] -= 1
            for seq in [s for s in self.running if s[0] <= 0]:
                self.running.remove(seq)
                seq[2].set_result(seq[1])
                log.info(
                    "simulated %s ran from %.3f to %.3f: %d tokens", *seq[3:], time.time(), seq[1]
                )


def _tone(samples: int) -> np.ndarray:
    """220 Hz at -20 dBFS: loud enough not to be trimmed as silence."""
    t = np.arange(samples, dtype=np.float32) / SAMPLE_RATE
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
