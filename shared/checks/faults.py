"""Faults on demand: an engine that misbehaves, as language models that speak do, on a share of
first takes chosen by seed, so that the checks can be proved on a farm that never fails by
itself (``faults.rate``; ``bench/verify.py``). Never for production.

- ``early``: it stops after a quarter of the chunk;
- ``loop``: a half-second stretch repeats until three times the chunk's length (a codec
  engine's take never says end-of-speech);
- ``babble``: noise (random codes, for a codec engine) two and a half times as long;
- ``silence``: three seconds of silence in the middle; SNAC codes for silence are the model's
  own, so a codec engine holds one frame instead, a stall;
- ``skip``: the longest sentence is left out (half the words of a one-sentence chunk).

Later takes are the engine's own: a regenerated chunk is what a healthy model says.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.infra.checks_settings import FaultKind, FaultSettings
from shared.speech.codec import CODEBOOK_SIZE, SAMPLES_PER_FRAME, SnacCodes
from shared.speech.engine import Engine, Speech, SpeechRequest

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class FaultyEngine(Engine):
    """``engine``, made to misbehave on ``settings.rate`` of first takes."""

    def __init__(self, engine: Engine, settings: FaultSettings) -> None:
        self.engine, self.settings = engine, settings
        self.name, self.voices = engine.name, engine.voices

    def fault_for(self, request: SpeechRequest) -> FaultKind | None:
        return fault_for(self.settings, request.seed, request.take)

    async def generate(self, request: SpeechRequest) -> Speech:
        fault = self.fault_for(request)
        if fault == "skip":
            request = replace(request, text=skip_sentence(request.text))
        speech = await self.engine.generate(request)
        if fault is None or fault == "skip":
            return speech
        rng = np.random.default_rng(request.seed)
        if speech.codes is not None:
            return replace(speech, **_fault_codes(speech.codes, fault, rng))
        pcm = speech.pcm if speech.pcm is not None else np.zeros(0, np.float32)
        return replace(speech, pcm=_fault_pcm(pcm, fault, rng))

    async def aclose(self) -> None:
        await self.engine.aclose()

    def dead(self) -> bool:
        return self.engine.dead()


def fault_for(settings: FaultSettings, seed: int, take: int) -> FaultKind | None:
    """The fault a take with this seed suffers, if any: by its seed alone, so that reruns fail
    alike (and a benchmark can tell which chunks were spoiled)."""
    if take != 0 or not settings.kinds:
        return None
    digest = hashlib.blake2b(f"fault:{seed}".encode(), digest_size=8).digest()
    draw, pick = int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:], "big")
    if draw >= settings.rate * 2**32:
        return None
    return settings.kinds[pick % len(settings.kinds)]


def skip_sentence(text: str) -> str:
    """``text`` without its longest sentence, or, if it has one, without its second half."""
    sentences = _SENTENCE.split(text.strip())
    if len(sentences) > 1:
        longest = max(range(len(sentences)), key=lambda i: len(sentences[i]))
        return " ".join(s for i, s in enumerate(sentences) if i != longest)
    words = text.split()
    return " ".join(words[: max(1, len(words) // 2)])


def _fault_codes(codes: SnacCodes, fault: FaultKind, rng: np.random.Generator) -> dict:
    """What the fault makes of a codec engine's take: its codes, and whether it ended."""
    frames = codes.frames
    take = codes.select
    if fault == "early":
        return {"codes": take(np.arange(max(1, frames // 4)))}
    if fault == "loop":
        start, period = frames // 3, min(6, max(1, frames // 3))
        loop = start + np.arange(3 * frames) % period
        return {"codes": take(np.concatenate([np.arange(start), loop])), "ended": False}
    if fault == "silence":
        middle = frames // 2
        held = np.full(round(3 * SAMPLE_RATE / SAMPLES_PER_FRAME), middle)
        index = np.concatenate([np.arange(middle), held, np.arange(middle, frames)])
        return {"codes": take(index)}
    babble = round(2.5 * frames)
    levels = tuple(rng.integers(0, CODEBOOK_SIZE, babble * w) for w in (1, 2, 4))
    return {"codes": SnacCodes(levels), "ended": False}  # type: ignore[arg-type]


def _fault_pcm(pcm: np.ndarray, fault: FaultKind, rng: np.random.Generator) -> np.ndarray:
    """What the fault makes of an engine's PCM."""
    n = len(pcm)
    if fault == "early":
        return pcm[: n // 4]
    if fault == "loop":
        start, period = n // 3, min(SAMPLE_RATE // 2, max(1, n // 3))
        return np.concatenate([pcm[:start], np.resize(pcm[start : start + period], 3 * n)])
    if fault == "silence":
        gap = np.zeros(3 * SAMPLE_RATE, np.float32)
        return np.concatenate([pcm[: n // 2], gap, pcm[n // 2 :]])
    level = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if n else 0.05
    return (rng.standard_normal(round(2.5 * n)) * level).astype(np.float32)
