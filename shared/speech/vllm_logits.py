"""The frame rule inside vLLM: a logits processor for Model Runner V2 (vLLM 0.33).

vLLM 0.33 runs Llama models on Model Runner V2, whose custom logits processors implement
``vllm.v1.worker.gpu.sample.logits_processor.LogitsProcessor`` and are named to the engine as
``"module:Class"`` (``vllm_backend.FRAME_PROCESSOR``), so that the engine core's own
processes import this module. ``allowed_token_ids`` is no substitute: Model Runner V2 caps it
at 1,024 ids (``MAX_NUM_ALLOWED_TOKEN_IDS`` in ``vllm/v1/worker/gpu/sample/logit_bias.py``) and
a request over the cap kills the engine core.

A request opts in with ``SamplingParams(extra_args={FRAME_ARG: True})``; other requests the
engine serves (a ``vllm serve`` shared with text models) are left alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from vllm.v1.worker.gpu.buffer_utils import UvaBackedTensor
from vllm.v1.worker.gpu.sample.logits_processor import (
    LogitsContext,
    LogitsProcessor,
    LogitsProcRequestState,
)

from shared.speech.frame_mask import frame_slots, id_slots, mask_logits
from shared.speech.vllm_backend import FRAME_ARG

if TYPE_CHECKING:
    from vllm.config import VllmConfig
    from vllm.sampling_params import SamplingParams


def _frame_switch(params: SamplingParams) -> object:
    """What the request asked for the frame rule (not asked: False)."""
    return (params.extra_args or {}).get(FRAME_ARG, False)


class FrameSlots(LogitsProcessor):
    """Keep only the ids valid at each request's next frame slot (and end of speech at 0)."""

    def __init__(self, vllm_config: VllmConfig, req_states: LogitsProcRequestState) -> None:
        self.req_states = req_states
        self.allowed = id_slots(req_states.vocab_size, req_states.device)
        # Per request slot: does it follow the rule? Staged as vLLM's own processors stage
        # theirs (LogitBiasState in vllm/v1/worker/gpu/sample/logit_bias.py): the host array
        # ``.np`` is the truth, read to skip whole batches without a device sync; a change is
        # copied host to host into the next of a pool of pinned buffers, which the GPU reads in
        # place (``.gpu``, rebound at each copy) — no blocking copy stalls the step's overlap.
        # int32, as every UvaBackedTensor of vLLM 0.33's is (a bool view from a pinned buffer
        # is a path vLLM never takes)
        self.enabled = UvaBackedTensor(req_states.max_num_reqs, dtype=torch.int32)
        self._dirty = False

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        value = _frame_switch(sampling_params)
        if value not in (True, False):  # 1 and 0 too: vllm_xargs turns JSON true into 1
            raise ValueError(f"extra_args[{FRAME_ARG!r}] must be true or false, not {value!r}")

    def add_request(self, req_idx: int, sampling_params: SamplingParams) -> bool:
        wanted = bool(_frame_switch(sampling_params))
        if self.enabled.np[req_idx] != wanted:  # a recycled slot may hold its last occupant's
            self.enabled.np[req_idx] = wanted
            self._dirty = True
        return wanted

    def apply_staged_writes(self) -> None:
        if self._dirty:  # unchanged, the pinned buffer in use still holds the flags
            self.enabled.copy_to_uva()
            self._dirty = False

    def apply(self, logits: torch.Tensor, ctx: LogitsContext) -> torch.Tensor:
        if not self.enabled.np[ctx.idx_mapping_np].any():
            return logits
        request = ctx.expanded_idx_mapping  # logits row -> request slot
        prompt_len = self.req_states.prompt_len.gpu[request]
        # a row's logits come from the token at ``pos``; the token drawn goes to pos + 1
        generated = ctx.pos + 1 - prompt_len
        enabled = self.enabled.gpu[request].bool()
        return mask_logits(logits, frame_slots(generated), self.allowed, enabled)
