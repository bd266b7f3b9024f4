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
from dataclasses import dataclass

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.speech.codec import (
    CODEBOOK_SIZE,
    FRAME_TOKENS,
    SAMPLES_PER_FRAME,
    SnacCodes,
    codes_from_frames,
)
from shared.speech.engine import Engine, Speech, SpeechRequest
from shared.text.voices import VOICES

TRACE = re.compile(r"simulated (\S+) ran from ([0-9.]+) to ([0-9.]+): ([0-9]+) tokens")

log = logging.getLogger(__name__)


def tokens_for(text: str, tokens_per_char: float) -> int:
    """The tokens a chunk of ``text`` takes: whole frames, at least one."""
    return max(FRAME_TOKENS, round(len(text) * tokens_per_char / FRAME_TOKENS) * FRAME_TOKENS)


@dataclass
class _Sequence:
    request: SpeechRequest
    need: int  # tokens in all
    done: asyncio.Future
    left: int = 0  # tokens still to make
    started: float = 0.0
    codes: SnacCodes | None = None  # what it says, where the engine makes codes


class SimulatedEngine(Engine):
    """Waiting chunks are admitted urgent first, then in arrival order (vLLM's priority
    policy); none running is preempted for them. ``codes``: chunks come out as SNAC codes
    (random, seeded by the chunk) for a SNAC decoder to decode, else as a tone."""

    name, voices = "simulated", VOICES

    def __init__(
        self, max_num_seqs: int, step_s: float, tokens_per_char: float, codes: bool = False
    ) -> None:
        self.max_num_seqs, self.step_s, self.tokens_per_char = max_num_seqs, step_s, tokens_per_char
        self.codes = codes
        self.waiting: list[_Sequence] = []
        self.running: list[_Sequence] = []
        self.in_flight: list[int] = []  # batch size at every step
        self.seen: list[int] = []  # requests received by every step
        self.tokens = 0
        self.requests = 0
        self._stepper: asyncio.Task | None = None

    async def generate(self, request: SpeechRequest) -> Speech:
        need = tokens_for(request.text, self.tokens_per_char)
        self.requests += 1
        future = asyncio.get_running_loop().create_future()
        codes = _codes(request.seed, need // FRAME_TOKENS) if self.codes else None
        self.waiting.append(_Sequence(request, need, future, need, codes=codes))
        if self._stepper is None or self._stepper.done():
            self._stepper = asyncio.create_task(self._run())
        await future
        if codes is not None:
            return Speech(codes=codes, tokens=need)
        return Speech(pcm=_tone(0, need // FRAME_TOKENS), tokens=need)

    async def _run(self) -> None:
        while self.waiting or self.running:
            self.waiting.sort(key=lambda seq: not seq.request.urgent)  # stable: then arrival
            free = self.max_num_seqs - len(self.running)
            for seq in self.waiting[:free]:
                seq.started = time.time()
            self.running += self.waiting[:free]
            del self.waiting[:free]
            await asyncio.sleep(self.step_s)  # one forward pass, whatever the batch size
            self.in_flight.append(len(self.running))
            self.seen.append(self.requests)
            self.tokens += len(self.running)
            for seq in self.running:
                seq.left -= 1
                made = seq.need - seq.left
                if seq.request.listen is not None and made % FRAME_TOKENS == 0:
                    seq.request.listen(_frame(seq, made // FRAME_TOKENS - 1))
            for seq in [s for s in self.running if s.left <= 0]:
                self.running.remove(seq)
                seq.done.set_result(seq.need)
                log.info(
                    "simulated %s ran from %.3f to %.3f: %d tokens",
                    seq.request.request_id,
                    seq.started,
                    time.time(),
                    seq.need,
                )


def _frame(seq: _Sequence, frame: int) -> SnacCodes | np.ndarray:
    """A sequence's ``frame``, as the engine makes it."""
    if seq.codes is not None:
        return seq.codes.select(np.array([frame]))
    return _tone(frame, 1)


def _tone(first_frame: int, frames: int) -> np.ndarray:
    """220 Hz at -20 dBFS (loud enough not to be trimmed as silence), from ``first_frame``."""
    start = first_frame * SAMPLES_PER_FRAME
    t = np.arange(start, start + frames * SAMPLES_PER_FRAME, dtype=np.float64) / SAMPLE_RATE
    return (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _codes(seed: int, frames: int) -> SnacCodes:
    """Random codes, seeded by the chunk's seed."""
    rng = np.random.default_rng(seed & 0xFFFFFFFF)
    return codes_from_frames(rng.integers(0, CODEBOOK_SIZE, size=(frames, FRAME_TOKENS)).tolist())
