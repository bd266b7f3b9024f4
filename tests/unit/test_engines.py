from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
import torch

from shared.infra.settings import OrpheusSettings, Settings
from shared.speech.codec import END_OF_SPEECH, VOCAB_SIZE
from shared.speech.engine import Engine, EngineError, EngineLoop, Speech, SpeechRequest
from shared.speech.espeak import EspeakEngine
from shared.speech.factory import ESPEAK_FALLBACK_NOTE, build_engine, resolve_engine_name
from shared.speech.frame_mask import frame_slots, id_slots, mask_logits
from shared.speech.metering import EngineClock
from shared.speech.openai_backend import completion_body, ids_from_event
from shared.speech.orpheus import Sampling, token_budget
from shared.speech.transformers_backend import AudioPositionMask
from shared.speech.vllm_backend import (
    FRAME_ARG,
    FRAME_PROCESSOR,
    engine_arguments,
    sampling_arguments,
)
from shared.text.voices import VOICES
from tests.frames import expected_ids


def request(text: str = "Hello there, this is a test.", voice: str = "tara", seed: int = 1):
    return SpeechRequest(request_id=f"test-{seed}", text=text, voice=voice, seed=seed)


def test_position_mask_allows_only_the_slot_range_and_stop_at_frame_starts():
    mask = AudioPositionMask(prompt_length=5)
    for generated in range(15):
        scores = torch.zeros(2, VOCAB_SIZE)
        masked = mask(torch.zeros(2, 5 + generated, dtype=torch.long), scores)
        for row in masked:
            assert torch.isfinite(row).nonzero().flatten().tolist() == expected_ids(generated)


def test_frame_mask_masks_each_row_at_its_own_position_and_only_the_rows_asked():
    generated = torch.tensor([0, 1, 6, 7, 13, 700, 3])
    logits = torch.randn(len(generated), VOCAB_SIZE)
    before = logits.clone()
    rows = torch.tensor([True] * 6 + [False])
    mask_logits(logits, frame_slots(generated), id_slots(VOCAB_SIZE), rows)
    for row, index in enumerate(generated.tolist()[:6]):
        kept = torch.isfinite(logits[row]).nonzero().flatten().tolist()
        assert kept == expected_ids(index)
        assert torch.equal(logits[row, kept], before[row, kept])  # the others are untouched
    assert torch.equal(logits[6], before[6])  # a row not asked for keeps every id


def test_token_budget_is_sized_to_the_chunk_in_whole_frames():
    s = OrpheusSettings()
    short, long = token_budget("Hi.", s), token_budget("x" * 400, s)
    assert short == s.min_tokens and long == 3206  # 3200 rounded up to whole frames
    assert long % 7 == 0
    assert token_budget("x" * 5000, s) == s.max_tokens


def test_vllm_arguments_come_from_settings():
    """The values only; ``make check-vllm`` lets vLLM 0.33 itself validate them."""
    s = OrpheusSettings(tensor_parallel_size=2, max_num_seqs=128)
    args = engine_arguments("/models/orpheus", s)
    assert args["quantization"] == "fp8_per_tensor" and args["kv_cache_dtype"] == "auto"
    assert (args["tensor_parallel_size"], args["max_num_seqs"]) == (2, 128)
    assert args["max_model_len"] == 8192 and args["enable_prefix_caching"] is True
    assert args["logits_processors"] == [FRAME_PROCESSOR]
    assert engine_arguments("/m", OrpheusSettings(quantization=""))["quantization"] is None
    params = sampling_arguments(Sampling(700, 0.6, 0.9, 1.1, seed=3))
    assert params["max_tokens"] == 700 and params["stop_token_ids"] == [END_OF_SPEECH]
    assert params["extra_args"] == {FRAME_ARG: True}
    assert "allowed_token_ids" not in params  # capped at 1,024 ids by Model Runner V2


def test_openai_body_sends_ids_and_events_give_ids_back():
    body = completion_body("orpheus", [1, 2, 3], Sampling(70, 0.6, 0.9, 1.1, seed=3))
    assert body["prompt"] == [1, 2, 3] and body["stream"] and body["max_tokens"] == 70
    assert body["return_token_ids"] is True
    first = {"choices": [{"prompt_token_ids": [1, 2, 3], "token_ids": [128270, 128271]}]}
    assert ids_from_event(first) == [128270, 128271]  # never the prompt's
    assert ids_from_event(json.loads('{"choices": [{"text": ""}], "tokens": [128258]}')) == [128258]
    with pytest.raises(EngineError, match="mid-stream: boom"):
        ids_from_event({"error": {"message": "boom", "type": "InternalServerError", "code": 500}})


def test_espeak_speaks_every_voice():
    engine = EspeakEngine()
    lengths = set()
    for voice in VOICES:
        speech = engine.synthesize(request("Testing one two three <laugh>.", voice))
        assert speech.pcm is not None and speech.pcm.dtype == np.float32
        assert 0.5 < len(speech.pcm) / 24000 < 5 and np.abs(speech.pcm).max() > 0.05
        lengths.add(len(speech.pcm))
    assert len(lengths) > 1  # the voices really differ


def test_auto_falls_back_to_espeak_without_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_engine_name(Settings()) == ("espeak", ESPEAK_FALLBACK_NOTE)
    assert resolve_engine_name(Settings(engine="espeak")) == ("espeak", None)


def test_auto_picks_orpheus_when_configured(orpheus_settings):
    auto = orpheus_settings.model_copy(update={"engine": "auto"})
    assert resolve_engine_name(auto) == ("orpheus", None)


def test_orpheus_on_the_tiny_checkpoint_yields_clean_frames(orpheus_settings):
    engine = build_engine(orpheus_settings, "orpheus")
    loop = EngineLoop()
    try:
        speech = loop.run(engine.generate(request(seed=7)))
        again = loop.run(engine.generate(request(seed=7)))
    finally:
        loop.close()
    assert speech.codes is not None and speech.codes.frames > 0
    assert speech.codes.dropped_tokens == 0 and speech.codes.partial_frames == 0
    assert speech.tokens <= token_budget("Hello there, this is a test.", orpheus_settings.orpheus)
    assert all(level.max() < 4096 for level in speech.codes.levels)
    for a, b in zip(speech.codes.levels, again.codes.levels, strict=True):  # seeded sampling
        assert np.array_equal(a, b)


class SlowEngine(Engine):
    name, voices = "slow", VOICES

    def __init__(self) -> None:
        self.in_flight = self.most = 0

    async def generate(self, request: SpeechRequest) -> Speech:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= 1
        return Speech(pcm=np.zeros(10, np.float32))


def test_engine_loop_interleaves_requests_from_many_threads():
    from concurrent.futures import ThreadPoolExecutor

    engine, loop = SlowEngine(), EngineLoop()
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: loop.run(engine.generate(request(seed=i))), range(16)))
    finally:
        loop.close()
    assert engine.most == 8


def test_unknown_model_directory_is_a_clear_error(tmp_path, monkeypatch):
    from shared.speech.weights import ModelNotFound

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    settings = Settings.model_validate({"orpheus": {"model": "nobody/no-such-model"}})
    with pytest.raises(ModelNotFound, match="not available locally"):
        build_engine(settings, "orpheus")


def test_the_null_engine_costs_nothing_and_is_never_automatic():
    from shared.speech.null import NullEngine

    engine = build_engine(Settings(engine="null"), "null")
    assert isinstance(engine, EngineClock) and isinstance(engine.engine, NullEngine)
    loop = EngineLoop()
    try:
        speech = loop.run(engine.generate(request()))
    finally:
        loop.close()
    assert speech.pcm is not None and not speech.pcm.any() and speech.engine_s >= 0
    assert resolve_engine_name(Settings(engine="null")) == ("null", None)


class Ids:
    """A backend that returns the ids it is given, to ``on_ids`` too in batches of ``batch``."""

    def __init__(self, ids: list[int], batch: int = 1) -> None:
        self.ids, self.batch = ids, batch

    async def generate_ids(self, request_id, prompt_ids, sampling, on_ids=None):
        ids = self.ids[: sampling.max_tokens]
        for start in range(0, len(ids), self.batch) if on_ids else ():
            on_ids(ids[start : start + self.batch])
        return ids


def test_orpheus_says_whether_the_model_ended_or_ran_out_of_budget(orpheus_settings):
    from transformers import AutoTokenizer

    from shared.speech.codec import END_OF_SPEECH, audio_token
    from shared.speech.orpheus import OrpheusEngine, token_budget

    settings = orpheus_settings.orpheus
    tokenizer = AutoTokenizer.from_pretrained(settings.model)
    text = "Hello there, this is a test. " * 4
    budget = token_budget(text, settings)
    frame = [audio_token(slot, 5) for slot in range(7)]
    for ids, ended in (
        (frame * (budget // 7 + 5), False),  # cut at the budget
        (frame * 2 + [END_OF_SPEECH], True),
        (frame * 2, True),  # stopped short of the budget: the stop token left out
    ):
        engine = OrpheusEngine(tokenizer, Ids(ids), settings)
        speech = asyncio.run(engine.generate(SpeechRequest("t", text, "tara", 1)))
        assert speech.ended is ended
        assert Speech.from_bytes(speech.to_bytes()).ended is ended


@pytest.mark.parametrize("batch", [1, 3, 7, 50])
def test_orpheus_hands_each_frame_on_as_it_is_made_the_frames_kept(orpheus_settings, batch):
    """Frames to the listener as the ids come (however the backend batches them), the same
    frames the chunk keeps: a bad token's frame dropped, resynchronised on the next slot 0,
    nothing after end-of-speech."""
    from transformers import AutoTokenizer

    from shared.speech.codec import END_OF_SPEECH, SnacCodes, audio_token
    from shared.speech.orpheus import OrpheusEngine

    settings = orpheus_settings.orpheus
    tokenizer = AutoTokenizer.from_pretrained(settings.model)
    rng = np.random.default_rng(batch)
    ids = [audio_token(p % 7, int(c)) for p, c in enumerate(rng.integers(0, 4096, 7 * 9))]
    ids[10] = 128000  # not audio: frame 1 is lost, frame 2 starts at its slot 0
    ids += [END_OF_SPEECH, *ids[:14]]
    heard: list[SnacCodes] = []
    engine = OrpheusEngine(tokenizer, Ids(ids, batch), settings)
    request = SpeechRequest("t", "Hello there. " * 20, "tara", 1, listen=heard.append)
    speech = asyncio.run(engine.generate(request))
    assert speech.codes is not None and speech.codes.frames == 8
    joined = SnacCodes.join(heard)
    assert all(
        np.array_equal(a, b) for a, b in zip(joined.levels, speech.codes.levels, strict=True)
    )


def test_the_transformers_backend_streams_the_ids_it_returns(orpheus_settings):
    """transformers' streamer interface: every generated id once, in order, none of the
    prompt's."""
    from shared.speech.orpheus import Sampling
    from shared.speech.transformers_backend import TransformersBackend

    backend = TransformersBackend(orpheus_settings.orpheus.model)
    streamed: list[int] = []
    prompt = [128259, 128000, 9906, 128009, 128260, 128261, 128257]
    ids = asyncio.run(
        backend.generate_ids("t", prompt, Sampling(35, 0.6, 0.9, 1.1, 3), streamed.extend)
    )
    assert streamed == ids and len(ids) > 0
