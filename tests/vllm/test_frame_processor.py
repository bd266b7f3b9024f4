"""FrameSlots driven through vLLM 0.33's own sampler state: its request slots, its loader of
``"module:Class"`` processors, its per-step batch context, on CPU tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.worker.gpu.sample.logits_processor import (
    LogitsContext,
    LogitsProcRequestState,
    build_custom_logits_processors,
)
from vllm.v1.worker.gpu.states import RequestState

from shared.speech.codec import AUDIO_BASE, VOCAB_SIZE, audio_token
from shared.speech.orpheus import Sampling
from shared.speech.vllm_backend import FRAME_PROCESSOR, sampling_arguments
from shared.speech.vllm_logits import FrameSlots
from tests.frames import expected_ids

MAX_REQS, MAX_LEN = 8, 256
LYRE = SamplingParams(**sampling_arguments(Sampling(7 * 20, 0.6, 0.9, 1.1, seed=1)))
PLAIN = SamplingParams(max_tokens=16)  # a request that did not ask for the rule


@pytest.fixture(autouse=True)
def host_buffers(monkeypatch):
    """vLLM keeps request state in pinned host memory mapped into the GPU (UVA); this machine
    has no GPU driver to pin with, so the state lives in vLLM's own non-UVA buffers, whose
    device (the CPU platform's) is the CPU. Nothing else of vLLM's is changed."""
    from vllm.v1.worker.gpu import buffer_utils

    monkeypatch.setattr(buffer_utils, "is_uva_available", lambda: False)


class Batch:
    """vLLM's request state with requests of several prompt lengths, each some tokens in."""

    def __init__(self, vllm_config) -> None:
        self.state = RequestState(
            max_num_reqs=MAX_REQS,
            max_model_len=MAX_LEN,
            max_num_batched_tokens=MAX_LEN,
            num_speculative_steps=0,
            vocab_size=VOCAB_SIZE,
            device=torch.device("cpu"),
        )
        (self.frames,) = build_custom_logits_processors(
            vllm_config, self.state, False, [FRAME_PROCESSOR]
        )
        self.generated: dict[int, int] = {}  # slot -> tokens generated so far

    def add(self, name: str, prompt_len: int, generated: int, params: SamplingParams) -> int:
        prompt = [AUDIO_BASE - 1] * prompt_len
        outputs = [audio_token(i % 7, 5) for i in range(generated)]  # resumed mid-request
        self.state.add_request(name, prompt_len, prompt + outputs, len(prompt + outputs), 100)
        slot = self.state.req_id_to_index[name]
        self.frames.add_request(slot, params)
        self.generated[slot] = generated
        return slot

    def step(self, slots: list[int], logits: torch.Tensor) -> torch.Tensor:
        """One sampling step over ``slots`` (in batch order), as the sampler calls apply()."""
        self.state.prompt_len.copy_to_uva()  # what the model runner's staged writes do
        self.frames.apply_staged_writes()
        prompt_len = self.state.prompt_len.np
        # each row's logits come from the last token fed, at position prompt + generated - 1
        pos = [int(prompt_len[s]) + self.generated[s] - 1 for s in slots]
        mapping = torch.tensor(slots, dtype=torch.int32)
        ctx = LogitsContext(
            expanded_idx_mapping=mapping,
            idx_mapping=mapping,
            idx_mapping_np=np.array(slots, dtype=np.int32),
            expanded_local_pos=torch.zeros(len(slots), dtype=torch.int32),
            input_ids=torch.zeros(len(slots), dtype=torch.int32),
            pos=torch.tensor(pos, dtype=torch.int64),
            seq_lens_upper_bound_np=np.array([p + 1 for p in pos], dtype=np.int32),
        )
        return self.frames.apply(logits, ctx)


def kept(row: torch.Tensor) -> list[int]:
    return torch.isfinite(row).nonzero().flatten().tolist()


def test_vllms_loader_builds_the_processor_named_in_the_engine_arguments(vllm_config):
    batch = Batch(vllm_config)
    assert type(batch.frames) is FrameSlots
    assert isinstance(batch.frames.req_states, LogitsProcRequestState)


def test_each_request_is_masked_at_its_own_frame_position(vllm_config):
    batch = Batch(vllm_config)
    # prompts of different lengths, at every slot of a frame, one resumed after preemption
    shapes = [(12, 0), (30, 1), (7, 6), (40, 7), (19, 13), (25, 100), (9, 3)]
    slots = [batch.add(f"r{i}", p, g, LYRE) for i, (p, g) in enumerate(shapes)]
    plain = batch.add("plain", 15, 2, PLAIN)
    order = [slots[3], plain, *slots[:3], *slots[4:]]  # rows in another order than slots
    logits = torch.randn(len(order), VOCAB_SIZE)
    before = logits.clone()
    out = batch.step(order, logits)
    for row, slot in enumerate(order):
        if slot == plain:
            assert torch.equal(out[row], before[row])  # not asked for: untouched
            continue
        assert kept(out[row]) == expected_ids(batch.generated[slot])
        assert torch.equal(out[row, kept(out[row])], before[row, kept(out[row])])


def test_steps_follow_the_frame_and_a_recycled_slot_forgets_its_last_request(vllm_config):
    batch = Batch(vllm_config)
    slot = batch.add("book-0", 20, 0, LYRE)
    for generated in range(15):
        batch.generated[slot] = generated
        out = batch.step([slot], torch.zeros(1, VOCAB_SIZE))
        assert kept(out[0]) == expected_ids(generated)
    batch.state.remove_request("book-0")
    again = batch.add("chat-1", 20, 3, PLAIN)
    assert again == slot  # vLLM reuses the slot
    out = batch.step([again], torch.zeros(1, VOCAB_SIZE))
    assert len(kept(out[0])) == VOCAB_SIZE


def test_a_batch_without_lyres_requests_is_not_touched(vllm_config):
    batch = Batch(vllm_config)
    slot = batch.add("plain", 10, 4, PLAIN)
    logits = torch.randn(1, VOCAB_SIZE)
    assert torch.equal(batch.step([slot], logits.clone()), logits)


def test_allowed_token_ids_over_vllms_cap_are_refused_inside_the_engine(vllm_config):
    """Why Lyre needs a processor: the audio range as allowed_token_ids fails in the sampler
    of the engine core (which vLLM then treats as fatal), not at admission."""
    from vllm.v1.worker.gpu.sample.logit_bias import LogitBiasState

    state = Batch(vllm_config).state
    bias = LogitBiasState(vllm_config, LogitsProcRequestState.from_request_state(state))
    audio_range = SamplingParams(
        max_tokens=16, allowed_token_ids=list(range(AUDIO_BASE, AUDIO_BASE + 7 * 4096))
    )
    audio_range.verify(vllm_config.model_config, None, None, None)  # admission lets it through
    with pytest.raises(ValueError, match="Too many allowed token IDs"):
        bias.add_request(0, audio_range)
