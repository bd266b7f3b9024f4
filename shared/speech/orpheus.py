"""Orpheus: text to SNAC codes through a language-model backend."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import (
    END_OF_SPEECH,
    FRAME_TOKENS,
    FrameParser,
    build_prompt_ids,
    codes_from_frames,
    parse_tokens,
)
from shared.speech.engine import Engine, Listener, Speech, SpeechRequest
from shared.text.voices import VOICES


@dataclass(frozen=True)
class Sampling:
    max_tokens: int
    temperature: float
    top_p: float
    repetition_penalty: float
    seed: int
    urgent: bool = False  # ahead of other requests, where the backend can do that


IdsListener = Callable[[list[int]], None]  # each batch of ids as the backend generates them


class Backend(Protocol):
    """Runs the language model: prompt ids in, generated ids out (and, given ``on_ids``, to
    it as they are generated)."""

    async def generate_ids(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling: Sampling,
        on_ids: IdsListener | None = None,
    ) -> list[int]: ...

    async def aclose(self) -> None: ...

    def dead(self) -> bool: ...


def token_budget(text: str, settings: OrpheusSettings) -> int:
    """Size ``max_tokens`` to the chunk (vLLM's default of 16 would cut every chunk)."""
    wanted = max(settings.min_tokens, math.ceil(len(text) * settings.tokens_per_char))
    frames = math.ceil(min(wanted, settings.max_tokens) / FRAME_TOKENS)
    return frames * FRAME_TOKENS


class OrpheusEngine(Engine):
    name = "orpheus"
    voices = VOICES

    def __init__(self, tokenizer, backend: Backend, settings: OrpheusSettings) -> None:
        self.tokenizer = tokenizer
        self.backend = backend
        self.settings = settings

    def sampling_for(self, request: SpeechRequest) -> Sampling:
        s = self.settings
        return Sampling(
            token_budget(request.text, s),
            s.temperature,
            s.top_p,
            s.repetition_penalty,
            request.seed,
            request.urgent,
        )

    async def generate(self, request: SpeechRequest) -> Speech:
        prompt = build_prompt_ids(self.tokenizer, request.voice, request.text)
        sampling = self.sampling_for(request)
        on_ids = None if request.listen is None else _frames_to(request.listen)
        ids = await self.backend.generate_ids(request.request_id, prompt, sampling, on_ids)
        # a backend may leave the stop token out of what it returns: fewer tokens than the
        # budget also means that the model stopped on its own
        ended = END_OF_SPEECH in ids or len(ids) < sampling.max_tokens
        return Speech(codes=parse_tokens(ids), tokens=len(ids), ended=ended)

    async def aclose(self) -> None:
        await self.backend.aclose()

    def dead(self) -> bool:
        return self.backend.dead()


def _frames_to(listen: Listener) -> IdsListener:
    """Ids as they come to ``listen`` as SNAC frames, each frame once it is whole."""
    parser = FrameParser()

    def on_ids(ids: list[int]) -> None:
        frames = parser.feed(ids)
        if frames:
            listen(codes_from_frames(frames))

    return on_ids
