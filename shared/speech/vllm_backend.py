"""vLLM in-process backend: one long-lived ``AsyncLLM`` serving every chunk of the worker.

Written against vLLM 0.33.0 (the ``gpu`` extra pins it; ``make check-vllm`` runs these
functions through that version's own classes). It maps settings to engine arguments and one
request to one ``generate`` stream, on the EngineLoop's thread, so that concurrent chunks from
the worker's threads land in the same continuous batch.
"""

from __future__ import annotations

import os
from typing import Any

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import END_OF_SPEECH
from shared.speech.engine import EngineDead, EngineError
from shared.speech.orpheus import IdsListener, Sampling

VLLM_VERSION = "0.33.0"
# vLLM's priorities: the lower is scheduled first (vllm/v1/core/sched/request_queue.py's
# PriorityRequestQueue). A chunk someone is waiting on goes ahead of books' in the waiting queue.
URGENT_PRIORITY, BULK_PRIORITY = 0, 1
# The frame rule's logits processor (shared/speech/vllm_logits.py, which imports vLLM), named
# as the engine's processes import it, and the per-request switch that turns it on.
FRAME_PROCESSOR = "shared.speech.vllm_logits:FrameSlots"
FRAME_ARG = "lyre_frames"

# Set before vLLM reads its environment. The engine's worker processes must start with spawn:
# the gpu worker is a threaded Celery process, and forking a process with threads (and
# possibly CUDA) is unsafe; vLLM's default is fork. The frame rule is written for Model Runner
# V2 (vLLM's default for Llama models since 0.23): asking for it makes a configuration V2 can't
# run fail at start-up instead of falling back to V1, whose logits processors differ.
ENGINE_ENVIRONMENT = {
    "VLLM_WORKER_MULTIPROC_METHOD": "spawn",
    "VLLM_USE_V2_MODEL_RUNNER": "1",
}


def prepare_environment() -> None:
    """Put ENGINE_ENVIRONMENT in this process's environment, which vLLM's processes inherit."""
    os.environ.update(ENGINE_ENVIRONMENT)


def engine_arguments(model_dir: str, settings: OrpheusSettings) -> dict[str, Any]:
    """Keyword arguments for ``vllm.AsyncEngineArgs``."""
    return {
        "model": model_dir,
        "quantization": settings.quantization or None,  # empty: keep the checkpoint's dtype
        "kv_cache_dtype": settings.kv_cache_dtype,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "max_model_len": settings.max_model_len,  # the default (131072) fails the KV check
        "max_num_seqs": settings.max_num_seqs,
        "enable_prefix_caching": settings.enable_prefix_caching,
        "logits_processors": [FRAME_PROCESSOR],
        # waiting requests by their priority (urgent_priority), then by arrival; vLLM 0.33
        # preempts none of the running for it (vllm/v1/core/sched/scheduler.py stops admitting
        # at max_num_seqs): the worker keeps seats free for urgent chunks (EngineSeats)
        "scheduling_policy": "priority",
        "generation_config": "vllm",  # every sampling value comes from Lyre's settings
    }


def sampling_arguments(sampling: Sampling) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams``."""
    return {
        "max_tokens": sampling.max_tokens,  # always set: vLLM's default is 16
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "repetition_penalty": sampling.repetition_penalty,
        "stop_token_ids": [END_OF_SPEECH],
        "seed": sampling.seed,
        "extra_args": {FRAME_ARG: True},  # the frame rule (shared.speech.vllm_logits)
    }


class VllmBackend:
    def __init__(self, model_dir: str, settings: OrpheusSettings) -> None:
        prepare_environment()
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.engine = AsyncLLM.from_engine_args(
            AsyncEngineArgs(**engine_arguments(model_dir, settings))
        )

    async def generate_ids(
        self,
        request_id: str,
        prompt_ids: list[int],
        sampling: Sampling,
        on_ids: IdsListener | None = None,
    ) -> list[int]:
        """The ids the engine generates for the prompt; to ``on_ids`` too as they come (vLLM's
        delta outputs: each holds the ids since the last), else only the final output."""
        from vllm.exceptions import VLLMError
        from vllm.inputs import tokens_input
        from vllm.sampling_params import RequestOutputKind, SamplingParams
        from vllm.v1.engine.exceptions import EngineDeadError

        kind = RequestOutputKind.FINAL_ONLY if on_ids is None else RequestOutputKind.DELTA
        params = SamplingParams(**sampling_arguments(sampling), output_kind=kind)
        priority = URGENT_PRIORITY if sampling.urgent else BULK_PRIORITY
        ids: list[int] = []
        outputs = 0
        try:
            # the prompt as the engine's own input (vllm/inputs/engine.py: a dict without its
            # "type" is the raw prompt vLLM 0.33 warns it will stop taking)
            async for output in self.engine.generate(
                tokens_input(prompt_ids), params, request_id, priority=priority
            ):
                outputs += 1
                new = list(output.outputs[0].token_ids) if output.outputs else []
                if on_ids is None:
                    ids = new  # FINAL_ONLY: the one output holds them all
                elif new:
                    ids += new
                    on_ids(new)
        except EngineDeadError as exc:
            raise EngineDead(f"vLLM's engine died: {exc}") from exc
        except VLLMError as exc:  # a refused request, or a recoverable generate() failure
            raise EngineError(f"vLLM failed chunk {request_id}: {exc}") from exc
        if not outputs or not ids:
            raise EngineError(f"vLLM returned nothing for chunk {request_id}")
        return ids

    def dead(self) -> bool:
        return bool(self.engine.errored)

    async def aclose(self) -> None:
        self.engine.shutdown()
