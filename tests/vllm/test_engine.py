"""Lyre's engine and sampling arguments, validated by vLLM 0.33's own classes."""

from __future__ import annotations

import ast
import asyncio
import importlib
from pathlib import Path

import pytest
import vllm
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError
from vllm.v1.worker.gpu.sample.logits_processor import (
    build_custom_logits_processors_params_validator,
)

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import END_OF_SPEECH
from shared.speech.engine import EngineDead, EngineError
from shared.speech.orpheus import Sampling
from shared.speech.vllm_backend import (
    FRAME_ARG,
    FRAME_PROCESSOR,
    VLLM_VERSION,
    VllmBackend,
    engine_arguments,
    sampling_arguments,
)
from shared.speech.vllm_logits import FrameSlots

ROOT = Path(__file__).resolve().parents[2]
SAMPLING = Sampling(max_tokens=7 * 300, temperature=0.6, top_p=0.9, repetition_penalty=1.1, seed=7)


def vllm_imports() -> set[tuple[str, str]]:
    """Every ``from vllm… import name`` in Lyre's code."""
    found = set()
    for folder in ("shared", "workers", "api", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("vllm"):
                    found |= {(node.module, alias.name) for alias in node.names}
    return found


def test_this_is_the_pinned_vllm():
    assert vllm.__version__ == VLLM_VERSION


def test_every_vllm_name_lyre_uses_exists():
    names = vllm_imports()
    assert ("vllm.v1.engine.async_llm", "AsyncLLM") in names  # the scan sees the backend
    missing = [f"{m}.{n}" for m, n in names if not hasattr(importlib.import_module(m), n)]
    assert missing == []


def test_vllm_builds_its_engine_configuration_from_lyres_settings(vllm_config):
    model, cache = vllm_config.model_config, vllm_config.cache_config
    assert model.logits_processors == [FRAME_PROCESSOR]
    assert model.quantization == "fp8_per_tensor"  # the name 0.33 gives online FP8
    assert cache.cache_dtype == "auto"  # the model's own dtype: no uncalibrated FP8 cache
    assert model.max_model_len == 8192 and cache.enable_prefix_caching
    assert vllm_config.scheduler_config.max_num_seqs == 64
    assert vllm_config.parallel_config.tensor_parallel_size == 1
    assert vllm_config.use_v2_model_runner  # the interface FrameSlots implements


def test_the_engines_processes_start_with_spawn():
    """vLLM's own choice of start method, after Lyre's environment (its default is fork)."""
    from vllm.utils.system_utils import get_mp_context

    assert get_mp_context().get_start_method() == "spawn"


def test_other_settings_pass_too(orpheus_dir):
    from vllm.engine.arg_utils import AsyncEngineArgs

    settings = OrpheusSettings(
        quantization="", kv_cache_dtype="fp8", max_num_seqs=256, max_model_len=4096
    )
    config = AsyncEngineArgs(**engine_arguments(str(orpheus_dir), settings)).create_engine_config()
    assert config.model_config.quantization is None and config.cache_config.cache_dtype == "fp8"
    assert config.scheduler_config.max_num_seqs == 256


def test_an_unknown_setting_value_is_refused_by_vllm(orpheus_dir):
    from vllm.engine.arg_utils import AsyncEngineArgs

    settings = OrpheusSettings(kv_cache_dtype="fp7")
    with pytest.raises(Exception, match="fp7"):
        AsyncEngineArgs(**engine_arguments(str(orpheus_dir), settings)).create_engine_config()


def test_sampling_params_pass_the_checks_vllm_makes_at_admission(vllm_config):
    params = SamplingParams(
        **sampling_arguments(SAMPLING), output_kind=RequestOutputKind.FINAL_ONLY
    )
    params.verify(vllm_config.model_config, None, None, None)  # InputProcessor's own check
    build_custom_logits_processors_params_validator([FRAME_PROCESSOR])(params)
    assert params.max_tokens == 7 * 300 and params.stop_token_ids == [END_OF_SPEECH]
    assert params.seed == 7 and params.allowed_token_ids is None
    assert params.extra_args == {FRAME_ARG: True}


def test_the_frame_processor_refuses_a_bad_switch():
    params = SamplingParams(max_tokens=7, extra_args={FRAME_ARG: "yes"})
    with pytest.raises(Exception, match=FRAME_ARG):
        build_custom_logits_processors_params_validator([FRAME_PROCESSOR])(params)
    assert FrameSlots.validate_params(SamplingParams(max_tokens=7)) is None  # not asked: fine


class StubEngine:
    """Stands in for AsyncLLM (which needs a GPU) to raise vLLM's own exceptions."""

    def __init__(self, error: Exception) -> None:
        self.error, self.errored = error, isinstance(error, EngineDeadError)

    async def generate(self, prompt, params, request_id):
        raise self.error
        yield  # an async generator, as AsyncLLM.generate is


def backend_with(error: Exception) -> VllmBackend:
    backend = VllmBackend.__new__(VllmBackend)
    backend.engine = StubEngine(error)
    return backend


def test_a_dead_engine_is_engine_dead_and_a_failed_request_an_engine_error():
    dead = backend_with(EngineDeadError())
    with pytest.raises(EngineDead):
        asyncio.run(dead.generate_ids("job-0", [1, 2, 3], SAMPLING))
    assert dead.dead()
    failed = backend_with(EngineGenerateError())
    with pytest.raises(EngineError) as caught:
        asyncio.run(failed.generate_ids("job-1", [1, 2, 3], SAMPLING))
    assert not isinstance(caught.value, EngineDead) and not failed.dead()
