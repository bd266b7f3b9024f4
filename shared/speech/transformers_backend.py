"""Hugging Face ``transformers`` backend (CPU or GPU): development, tests, small machines."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import torch

from shared.speech.codec import END_OF_SPEECH
from shared.speech.frame_mask import frame_slots, id_slots, mask_logits
from shared.speech.orpheus import IdsListener, Sampling


class AudioPositionMask:
    """The frame rule (:mod:`shared.speech.frame_mask`) as a transformers logits processor:
    every row of the batch is at the same generated position."""

    def __init__(self, prompt_length: int) -> None:
        self.prompt_length = prompt_length
        self._allowed: torch.Tensor | None = None

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._allowed is None:
            self._allowed = id_slots(scores.shape[-1], scores.device)
        generated = torch.full(
            (scores.shape[0],), input_ids.shape[1] - self.prompt_length, device=scores.device
        )
        return mask_logits(scores, frame_slots(generated), self._allowed)


class IdsStreamer:
    """transformers' streamer interface (``BaseStreamer``: ``put``, ``end``), handing each
    generated id on; ``generate`` puts the prompt first, which is not passed on."""

    def __init__(self, on_ids: IdsListener) -> None:
        self.on_ids, self.prompt_seen = on_ids, False

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.on_ids(value.reshape(-1).tolist())

    def end(self) -> None:
        pass


class TransformersBackend:
    def __init__(self, model_dir: str, device: str = "cpu", constrained: bool = True) -> None:
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()

        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
        self.model = model.to(device)
        self.model.eval()
        self.device = device
        self.constrained = constrained
        self._lock = threading.Lock()  # one generate() at a time: the model is not reentrant

    def _generate(
        self, prompt_ids: list[int], sampling: Sampling, on_ids: IdsListener | None
    ) -> list[int]:
        from transformers import LogitsProcessorList

        inputs = torch.tensor([prompt_ids], device=self.device)
        masks = [AudioPositionMask(len(prompt_ids))] if self.constrained else []
        with self._lock, torch.inference_mode():
            torch.manual_seed(sampling.seed)
            output = self.model.generate(
                inputs,
                attention_mask=torch.ones_like(inputs),
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                repetition_penalty=sampling.repetition_penalty,
                max_new_tokens=sampling.max_tokens,
                eos_token_id=END_OF_SPEECH,
                pad_token_id=END_OF_SPEECH,
                logits_processor=LogitsProcessorList(masks),
                streamer=None if on_ids is None else IdsStreamer(on_ids),
            )
        return output[0, len(prompt_ids) :].tolist()

    async def generate_ids(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling: Sampling,
        on_ids: IdsListener | None = None,
    ) -> list[int]:
        return await asyncio.to_thread(self._generate, prompt_ids, sampling, on_ids)

    async def aclose(self) -> None:
        del self.model

    def dead(self) -> bool:
        return False
