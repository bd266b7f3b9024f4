"""Lyre's engine and sampling arguments, validated by vLLM 0.33's own classes."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import inspect
from pathlib import Path

import pytest
import vllm
from vllm.sampling_params import RequestOutputKind, SamplingParams
from vllm.v1.engine import FinishReason
from vllm.v1.engine.exceptions import EngineDeadError, EngineGenerateError
from vllm.v1.worker.gpu.sample.logits_processor import (
    build_custom_logits_processors_params_validator,
)

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import END_OF_SPEECH, FRAME_TOKENS, audio_token
from shared.speech.engine import EngineDead, EngineError
from shared.speech.orpheus import Sampling
from shared.speech.vllm_backend import (
    BULK_PRIORITY,
    FRAME_ARG,
    FRAME_PROCESSOR,
    URGENT_PRIORITY,
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
    # waiting requests by their priority (vllm/config/scheduler.py's SchedulerPolicy)
    assert vllm_config.scheduler_config.policy == "priority"
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


# ---- Lyre's one call into the engine: AsyncLLM.generate (needs a GPU), stood in for ----------

PROMPT_IDS = [128259, 1, 2, 3, 128260]  # any ids: only their passage is checked
URGENT = dataclasses.replace(SAMPLING, urgent=True)


@dataclasses.dataclass
class Call:
    """What ``AsyncLLM.generate`` was called with, by the names of its parameters."""

    prompt: object
    sampling_params: SamplingParams
    request_id: str
    priority: int


class StubEngine:
    """Stands in for AsyncLLM, whose ``generate`` needs a GPU: the same parameters as
    ``AsyncLLM.generate`` for those Lyre passes (vllm/v1/engine/async_llm.py:726, ``priority``
    keyword-only), checked against it by test_the_stub_takes_what_asyncllm_generate_takes.

    It raises ``error`` (vLLM's own exceptions), or replays ``steps`` through vLLM's own
    output path, as AsyncLLM does: each engine-core step's ``EngineCoreOutput`` goes through
    ``OutputProcessor.process_outputs`` into the request's ``RequestOutputCollector``, and the
    generator takes from the collector as ``AsyncLLM.generate`` does. ``steps`` is a list of
    reads; each read is the engine steps that land before the consumer reads again (more than
    one: the collector merges the deltas, as when a consumer lags)."""

    def __init__(self, error: Exception | None = None, steps=()) -> None:
        self.error, self.errored = error, isinstance(error, EngineDeadError)
        self.steps = steps
        self.calls: list[Call] = []

    async def generate(self, prompt, sampling_params, request_id, *, priority=0):
        from vllm.v1.engine import EngineCoreOutput, EngineCoreRequest
        from vllm.v1.engine.input_processor import InputProcessor
        from vllm.v1.engine.output_processor import OutputProcessor, RequestOutputCollector

        self.calls.append(Call(prompt, sampling_params, request_id, priority))
        if self.error is not None:
            raise self.error
        request = EngineCoreRequest(
            request_id=request_id,
            prompt_token_ids=prompt["prompt_token_ids"],
            mm_features=None,
            sampling_params=sampling_params,
            pooling_params=None,
            arrival_time=0.0,
            lora_request=None,
            cache_salt=None,
            data_parallel_rank=None,
            priority=priority,
        )
        InputProcessor.assign_request_id(request)  # AsyncLLM.add_request does this
        queue = RequestOutputCollector(sampling_params.output_kind, request.request_id)
        processor = OutputProcessor(None, log_stats=False)  # no tokenizer: ids, no text
        processor.add_request(request, None, queue=queue)
        finished = False
        for read in self.steps:
            for new_ids, finish_reason in read:
                processor.process_outputs(
                    [
                        EngineCoreOutput(
                            request_id=request.request_id,
                            new_token_ids=list(new_ids),
                            finish_reason=finish_reason,
                            stop_reason=END_OF_SPEECH if finish_reason is not None else None,
                        )
                    ]
                )
            out = queue.get_nowait()  # AsyncLLM.generate: q.get_nowait() or await q.get()
            if out is not None:
                finished = out.finished
                yield out
        assert finished  # a script ends with the step that finishes the request


def backend_with(engine: StubEngine) -> VllmBackend:
    backend = VllmBackend.__new__(VllmBackend)
    backend.engine = engine
    return backend


def test_a_dead_engine_is_engine_dead_and_a_failed_request_an_engine_error():
    dead = backend_with(StubEngine(EngineDeadError()))
    with pytest.raises(EngineDead):
        asyncio.run(dead.generate_ids("job-0", [1, 2, 3], SAMPLING))
    assert dead.dead()
    failed = backend_with(StubEngine(EngineGenerateError()))
    with pytest.raises(EngineError) as caught:
        asyncio.run(failed.generate_ids("job-1", [1, 2, 3], SAMPLING))
    assert not isinstance(caught.value, EngineDead) and not failed.dead()


class Recorder:
    """Records how ``generate`` is called, positional and keyword, then fails the chunk."""

    def __init__(self) -> None:
        self.errored = False
        self.args: tuple = ()
        self.kwargs: dict = {}

    def generate(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        raise EngineGenerateError()  # no stream: Lyre's call is all this is for


def test_lyres_call_binds_to_vllms_asyncllm_generate():
    """The call exactly as Lyre makes it, positional and keyword, against AsyncLLM.generate's
    real signature: a keyword it lacks, or a positional that lands on the wrong parameter,
    fails here rather than on a GPU."""
    from vllm.inputs import tokens_input
    from vllm.v1.engine.async_llm import AsyncLLM

    engine = Recorder()
    with pytest.raises(EngineError):
        asyncio.run(backend_with(engine).generate_ids("job-2", PROMPT_IDS, URGENT))
    bound = inspect.signature(AsyncLLM.generate).bind(None, *engine.args, **engine.kwargs)
    assert bound.arguments["prompt"] == tokens_input(PROMPT_IDS)
    assert isinstance(bound.arguments["sampling_params"], SamplingParams)
    assert bound.arguments["request_id"] == "job-2"
    assert bound.arguments["priority"] == URGENT_PRIORITY
    # and the same call, made from its parts, binds the same way
    params = bound.arguments["sampling_params"]
    inspect.signature(AsyncLLM.generate).bind(
        None, tokens_input(PROMPT_IDS), params, "job-2", priority=BULK_PRIORITY
    )


def test_the_stub_takes_what_asyncllm_generate_takes():
    """Each of the stub's parameters is AsyncLLM.generate's: same name, kind and default."""
    from vllm.v1.engine.async_llm import AsyncLLM

    real = inspect.signature(AsyncLLM.generate).parameters
    stub = inspect.signature(StubEngine.generate).parameters
    for name, parameter in stub.items():
        assert name in real
        assert parameter.kind == real[name].kind
        assert parameter.default == real[name].default

    def positional(parameters) -> list[str]:
        return [n for n, p in parameters.items() if p.kind != inspect.Parameter.KEYWORD_ONLY]

    assert positional(stub) == positional(real)  # all of them, in the same order


# A chunk's generation in engine-core steps: (new ids, finish reason) per step. The last
# step samples the stop id (END_OF_SPEECH, in stop_token_ids), which vLLM keeps in the output.
A = [audio_token(slot, 10 + slot) for slot in range(FRAME_TOKENS)]
B = [audio_token(slot, 20 + slot) for slot in range(FRAME_TOKENS)]
STEPS = [
    [(A[:1], None)],
    [(A[1:3], None)],  # more than one id in a step: speculative decoding's accepted drafts
    [(A[3:4], None), (A[4:7], None)],  # two steps before the consumer reads: merged
    [([], None)],  # a step with no new id for this request
    [(B[:7], None)],
    [([END_OF_SPEECH], FinishReason.STOP)],
]
GENERATED = A + B + [END_OF_SPEECH]


def test_with_on_ids_lyre_asks_for_deltas_and_hands_each_on():
    engine = StubEngine(steps=STEPS)
    deltas: list[list[int]] = []
    backend = backend_with(engine)
    ids = asyncio.run(backend.generate_ids("job-3", PROMPT_IDS, SAMPLING, deltas.append))
    assert ids == GENERATED
    # each output vLLM yields holds only the ids since the last; an empty one is not handed on
    assert deltas == [A[:1], A[1:3], A[3:7], B, [END_OF_SPEECH]]
    (call,) = engine.calls
    assert call.sampling_params.output_kind == RequestOutputKind.DELTA
    assert call.prompt == {"type": "token", "prompt_token_ids": PROMPT_IDS}
    assert call.request_id == "job-3" and call.priority == BULK_PRIORITY


def test_without_on_ids_lyre_takes_the_one_final_output():
    engine = StubEngine(steps=STEPS)
    ids = asyncio.run(backend_with(engine).generate_ids("job-4", PROMPT_IDS, URGENT))
    assert ids == GENERATED
    (call,) = engine.calls
    assert call.sampling_params.output_kind == RequestOutputKind.FINAL_ONLY
    assert call.prompt == {"type": "token", "prompt_token_ids": PROMPT_IDS}
    assert call.priority == URGENT_PRIORITY


def test_the_outputs_the_stub_yields_are_vllms_delta_outputs():
    """The stub's outputs are vLLM's own objects, with only the new ids in each (what
    vllm/v1/engine/output_processor.py's _new_completion_output builds in DELTA mode)."""
    from vllm.outputs import CompletionOutput, RequestOutput

    async def collect() -> list:
        params = SamplingParams(**sampling_arguments(SAMPLING), output_kind=RequestOutputKind.DELTA)
        engine = StubEngine(steps=STEPS)
        return [out async for out in engine.generate(tokens_prompt(), params, "job-5")]

    outputs = asyncio.run(collect())
    assert all(isinstance(out, RequestOutput) for out in outputs)
    assert all(isinstance(out.outputs[0], CompletionOutput) for out in outputs)
    deltas = [A[:1], A[1:3], A[3:7], [], B, [END_OF_SPEECH]]  # the reads' ids, merged per read
    assert [list(out.outputs[0].token_ids) for out in outputs] == deltas
    assert [out.finished for out in outputs] == [False] * 5 + [True]
    assert outputs[-1].outputs[0].finish_reason == "stop"
    assert {out.request_id for out in outputs} == {"job-5"}  # the id Lyre gave, not vLLM's


def tokens_prompt():
    from vllm.inputs import tokens_input

    return tokens_input(PROMPT_IDS)


@pytest.fixture(scope="module")
def input_processor(vllm_config):
    """vLLM's own InputProcessor (what AsyncLLM.add_request hands a prompt to), built on CPU
    from Lyre's configuration, with the checkpoint's tokenizer."""
    from vllm.v1.engine.input_processor import InputProcessor

    return InputProcessor(vllm_config)


def test_lyres_prompt_is_rendered_input_to_vllms_input_processor(input_processor, monkeypatch):
    """The prompt Lyre passes goes through InputProcessor.process_inputs as an EngineInput:
    not the raw-prompt path that vLLM 0.33 deprecates (vllm/v1/engine/input_processor.py:402-420,
    "Passing raw prompts to InputProcessor is deprecated"), which re-renders the prompt with
    parse_model_prompt and the renderer."""
    from vllm.v1.engine import input_processor as module

    engine = StubEngine(steps=STEPS)
    asyncio.run(backend_with(engine).generate_ids("job-6", PROMPT_IDS, URGENT, lambda ids: None))
    (call,) = engine.calls

    def raw_prompt_path(*args, **kwargs):
        raise AssertionError("raw prompt path")

    monkeypatch.setattr(module, "parse_model_prompt", raw_prompt_path)
    monkeypatch.setattr(input_processor.renderer, "render_cmpl", raw_prompt_path)
    request = input_processor.process_inputs(
        call.request_id,
        call.prompt,
        call.sampling_params,
        supported_tasks=("generate",),  # what the engine core reports for a Llama model
        priority=call.priority,
    )
    assert request.prompt_token_ids == PROMPT_IDS and request.priority == URGENT_PRIORITY
    assert request.sampling_params.output_kind == RequestOutputKind.DELTA
    assert request.sampling_params.extra_args == {FRAME_ARG: True}
    # the tripwires are on the raw path: a prompt without its "type" takes it
    with pytest.raises(AssertionError, match="raw prompt path"):
        input_processor.process_inputs(
            "job-7", {"prompt_token_ids": PROMPT_IDS}, call.sampling_params, ("generate",)
        )
