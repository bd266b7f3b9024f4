"""vLLM in-process backend: one long-lived ``AsyncLLM`` serving every chunk of the worker.

Thin on purpose: it only maps settings to engine arguments and one request to one
``generate`` stream. It runs on the EngineLoop's thread, so concurrent chunks from the worker's
threads land in the same continuous batch.
"""

from __future__ import annotations

from typing import Any

from shared.codec import AUDIO_BASE, AUDIO_END, END_OF_SPEECH
from shared.engines.orpheus import Sampling
from shared.settings import OrpheusSettings


def engine_arguments(model_dir: str, settings: OrpheusSettings) -> dict[str, Any]:
    """Keyword arguments for ``vllm.AsyncEngineArgs``."""
    return {
        "model": model_dir,
        "quantization": settings.quantization,
        "kv_cache_dtype": settings.kv_cache_dtype,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "max_model_len": settings.max_model_len,  # the default (131072) fails the KV check
        "max_num_seqs": settings.max_num_seqs,
        "enable_prefix_caching": settings.enable_prefix_caching,
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
        # vLLM cannot mask by position, but it can keep the model inside the audio range.
        "allowed_token_ids": [*range(AUDIO_BASE, AUDIO_END), END_OF_SPEECH],
    }


class VllmBackend:
    def __init__(self, model_dir: str, settings: OrpheusSettings) -> None:
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        self.engine = AsyncLLM.from_engine_args(
            AsyncEngineArgs(**engine_arguments(model_dir, settings))
        )

    async def generate_ids(
        self, request_id: str, prompt_ids: list[int], sampling: Sampling
    ) -> list[int]:
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind, SamplingParams

        params = SamplingParams(
            **sampling_arguments(sampling), output_kind=RequestOutputKind.FINAL_ONLY
        )
        final = None
        async for output in self.engine.generate(
            request_id=request_id,
            prompt=TokensPrompt(prompt_token_ids=prompt_ids),
            sampling_params=params,
        ):
            final = output
        return list(final.outputs[0].token_ids) if final else []

    async def aclose(self) -> None:
        self.engine.shutdown()
