"""Urgent chunks and books in vLLM 0.33's own scheduler (``vllm.v1.core.sched.scheduler``),
stepped on CPU as ``EngineCore.step`` steps it (vllm/v1/engine/core.py:677-692: ``schedule``,
the model's sampled ids, ``update_from_output``), with a made-up model output in place of the
GPU's: one id per scheduled request per step.

What it shows: under Lyre's ``scheduling_policy="priority"`` an urgent request is first among
the *waiting*, but vLLM preempts no *running* request for it, so with ``max_num_seqs`` full of
books it waits for a book to finish; with ``urgent_seats`` kept free (``EngineSeats``,
shared/speech/seats.py) it is admitted at the next step.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest
import torch
from vllm.sampling_params import SamplingParams
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request, RequestStatus

from shared.infra.settings import OrpheusSettings
from shared.speech.codec import AUDIO_BASE, END_OF_SPEECH
from shared.speech.engine import Speech, SpeechRequest
from shared.speech.orpheus import Sampling
from shared.speech.seats import EngineSeats
from shared.speech.vllm_backend import (
    BULK_PRIORITY,
    URGENT_PRIORITY,
    engine_arguments,
    sampling_arguments,
)

SETTINGS = OrpheusSettings(max_num_seqs=4, urgent_seats=1)
BOOK_SEATS = SETTINGS.max_num_seqs - SETTINGS.urgent_seats  # what EngineSeats lets books hold
NUM_BLOCKS = 1024  # KV blocks: far more than these requests need, so none is ever short


@pytest.fixture(scope="module")
def config(orpheus_dir):
    """The engine configuration vLLM builds from Lyre's arguments for a 4-seat engine. The
    tokenizer is not loaded (``skip_tokenizer_init``): the scheduler reaches it only through
    StructuredOutputManager, for grammar-constrained requests, which Lyre never sends."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    arguments = engine_arguments(str(orpheus_dir), SETTINGS)
    config = AsyncEngineArgs(**arguments, skip_tokenizer_init=True).create_engine_config()
    # what EngineCore._initialize_kv_caches sets after profiling the GPU (core.py:335)
    config.cache_config.num_gpu_blocks = NUM_BLOCKS
    return config


class Core:
    """vLLM's Scheduler over a KV cache of NUM_BLOCKS blocks (one full-attention group, as a
    Llama model's), built as EngineCore.__init__ builds it (core.py:164-187), stepped as
    EngineCore.step steps it."""

    def __init__(self, config) -> None:
        from vllm.utils.hashing import get_hash_fn_by_name
        from vllm.v1.core.kv_cache_utils import (
            get_request_block_hasher,
            init_none_hash,
            resolve_kv_cache_block_sizes,
        )
        from vllm.v1.kv_cache_interface import (
            FullAttentionSpec,
            KVCacheConfig,
            KVCacheGroupSpec,
        )
        from vllm.v1.structured_output import StructuredOutputManager

        spec = FullAttentionSpec(
            block_size=config.cache_config.block_size,
            num_kv_heads=1,
            head_size=64,
            dtype=torch.bfloat16,
        )
        kv_cache_config = KVCacheConfig(
            num_blocks=NUM_BLOCKS,
            kv_cache_tensors=[],  # the scheduler only counts blocks; the tensors are the GPU's
            kv_cache_groups=[KVCacheGroupSpec(["model.layers.0.self_attn.attn"], spec)],
        )
        block_size, hash_block_size = resolve_kv_cache_block_sizes(kv_cache_config, config)
        self.scheduler = Scheduler(
            vllm_config=config,
            kv_cache_config=kv_cache_config,
            structured_output_manager=StructuredOutputManager(config),
            block_size=block_size,
            hash_block_size=hash_block_size,
        )
        # prefix caching is on in Lyre's settings: requests carry block hashes (core.py:219-229)
        hash_fn = get_hash_fn_by_name(config.cache_config.prefix_caching_hash_algo)
        init_none_hash(hash_fn)
        self.block_hasher = get_request_block_hasher(
            hash_block_size, hash_fn, config.num_hash_lookahead_tokens
        )
        self.arrivals = itertools.count()  # arrival times: in the order added, no clock
        self.ending: set[str] = set()  # requests whose next sampled id is END_OF_SPEECH

    def add(self, request_id: str, priority: int) -> Request:
        sampling = Sampling(7 * 100, 0.6, 0.9, 1.1, seed=1, urgent=priority == URGENT_PRIORITY)
        arrival = next(self.arrivals)
        request = Request(
            request_id=request_id,
            prompt_token_ids=[AUDIO_BASE + arrival] * 20,  # distinct: no prefix-cache hits
            sampling_params=SamplingParams(**sampling_arguments(sampling)),
            pooling_params=None,
            arrival_time=float(arrival),
            priority=priority,
            block_hasher=self.block_hasher,
        )
        self.scheduler.add_request(request)
        return request

    def step(self) -> list[str]:
        """One engine step; the ids of the requests it admitted (its new requests)."""
        output = self.scheduler.schedule()
        assert not output.preempted_req_ids  # the cache never runs short here
        scheduled = list(output.num_scheduled_tokens)
        sampled = [[END_OF_SPEECH if r in self.ending else AUDIO_BASE] for r in scheduled]
        self.scheduler.update_from_output(
            output,
            ModelRunnerOutput(
                req_ids=scheduled,
                req_id_to_index={r: i for i, r in enumerate(scheduled)},
                sampled_token_ids=sampled,
            ),
        )
        return [new.req_id for new in output.scheduled_new_reqs]

    def running(self) -> list[str]:
        return [request.request_id for request in self.scheduler.running]


def test_lyres_engine_gets_this_scheduler_and_its_priority_queue(config):
    """The policy Lyre asks for reaches the scheduler, and the class the engine picks
    (AsyncScheduler where async scheduling is on, as on a GPU) schedules with this code."""
    from vllm.v1.core.sched.async_scheduler import AsyncScheduler
    from vllm.v1.core.sched.request_queue import PriorityRequestQueue, SchedulingPolicy

    assert config.scheduler_config.policy == "priority"
    assert config.scheduler_config.max_num_seqs == SETTINGS.max_num_seqs
    engine_class = config.scheduler_config.get_scheduler_cls()
    assert issubclass(engine_class, Scheduler) and engine_class.schedule is Scheduler.schedule
    assert AsyncScheduler.schedule is Scheduler.schedule  # not overridden (async_scheduler.py)
    core = Core(config)
    assert core.scheduler.policy == SchedulingPolicy.PRIORITY
    assert isinstance(core.scheduler.waiting, PriorityRequestQueue)
    assert URGENT_PRIORITY < BULK_PRIORITY  # the lower is scheduled first (request.py:357)


def test_a_full_engine_preempts_no_book_for_an_urgent_request(config):
    core = Core(config)
    books = [core.add(f"book-{i}", BULK_PRIORITY) for i in range(SETTINGS.max_num_seqs + 2)]
    assert core.step() == ["book-0", "book-1", "book-2", "book-3"]  # max_num_seqs of them

    urgent = core.add("urgent", URGENT_PRIORITY)
    for _ in range(3):  # however long the books run
        assert core.step() == []
        assert urgent.status == RequestStatus.WAITING and urgent.num_computed_tokens == 0
        assert core.running() == ["book-0", "book-1", "book-2", "book-3"]
        # first among the waiting, ahead of the books that arrived before it
        assert core.scheduler.waiting.peek_request() is urgent

    core.ending.add("book-0")
    assert core.step() == []  # book-0 samples the stop id and finishes: a seat frees
    assert books[0].status == RequestStatus.FINISHED_STOPPED
    assert core.step() == ["urgent"]  # the seat goes to it, not to book-4 (earlier)
    assert core.running() == ["book-1", "book-2", "book-3", "urgent"]
    assert books[4].status == books[5].status == RequestStatus.WAITING


def test_a_seat_freed_by_an_abort_goes_to_the_urgent_request_too(config):
    core = Core(config)
    for i in range(SETTINGS.max_num_seqs + 2):
        core.add(f"book-{i}", BULK_PRIORITY)
    core.step()
    core.add("urgent", URGENT_PRIORITY)
    assert core.step() == []
    core.scheduler.finish_requests("book-2", RequestStatus.FINISHED_ABORTED)  # a cancelled chunk
    assert core.step() == ["urgent"]


def test_with_urgent_seats_kept_an_urgent_request_goes_in_at_the_next_step(config):
    core = Core(config)
    for i in range(BOOK_SEATS):  # all EngineSeats lets in; the other books wait outside vLLM
        core.add(f"book-{i}", BULK_PRIORITY)
    assert core.step() == ["book-0", "book-1", "book-2"]
    assert core.step() == []  # decoding

    urgent = core.add("urgent", URGENT_PRIORITY)
    assert core.step() == ["urgent"]
    assert urgent.status == RequestStatus.RUNNING
    assert core.running() == ["book-0", "book-1", "book-2", "urgent"]


class SchedulerEngine:
    """A speech engine whose chunks are requests in vLLM's scheduler (``Core``): a chunk's
    ``generate`` returns when the scheduler finishes its request."""

    name, voices = "orpheus", ()

    def __init__(self, core: Core) -> None:
        self.core = core
        self.done: dict[str, asyncio.Event] = {}

    async def generate(self, request: SpeechRequest) -> Speech:
        self.done[request.request_id] = asyncio.Event()
        priority = URGENT_PRIORITY if request.urgent else BULK_PRIORITY  # as VllmBackend does
        self.core.add(request.request_id, priority)
        await self.done[request.request_id].wait()
        return Speech()

    def step(self) -> list[str]:
        admitted = self.core.step()
        for request_id, event in self.done.items():
            request = self.core.scheduler.requests.get(request_id)
            if request is None or request.is_finished():
                event.set()
        return admitted


def test_engine_seats_in_front_of_vllms_scheduler_keep_a_seat_for_urgent_chunks(config):
    """Lyre's EngineSeats over vLLM's scheduler, many books queued: the books hold at most
    max_num_seqs - urgent_seats of its seats, and an urgent chunk is admitted at once."""

    async def run() -> None:
        engine = SchedulerEngine(Core(config))
        seats = EngineSeats(engine, SETTINGS.max_num_seqs, SETTINGS.urgent_seats)
        books = [
            asyncio.create_task(seats.generate(SpeechRequest(f"book-{i}", "text", "tara", i)))
            for i in range(8)
        ]
        await asyncio.sleep(0)  # the tasks run up to their seat or their request
        assert engine.step() == ["book-0", "book-1", "book-2"]
        assert engine.step() == []  # the other books wait for a seat, outside vLLM

        urgent = asyncio.create_task(
            seats.generate(SpeechRequest("urgent", "text", "tara", 9, urgent=True))
        )
        await asyncio.sleep(0)
        assert engine.step() == ["urgent"]  # at the next step, no book having finished

        engine.core.ending.update({"urgent", "book-0"})
        engine.step()
        await asyncio.wait_for(urgent, 1)
        await asyncio.wait_for(books[0], 1)
        await asyncio.sleep(0)  # book-0's seat passes to book-3
        assert engine.step() == ["book-3"]
        assert engine.core.running() == ["book-1", "book-2", "book-3"]
        for task in books:
            task.cancel()
        await asyncio.gather(*books, return_exceptions=True)

    asyncio.run(run())
