"""The transcription check's cost on this CPU (``shared.checks.transcript``), per audio hour.

    python bench/transcribe.py [--threads 1] [--chunks 8,17,27] [--audio-s 60]

No hub is reachable, so it builds Whisper base.en with random weights (the published
dimensions, vocabulary and tokenizer layout: the same arithmetic as the real one), converts it
with CTranslate2's own converter to int8, loads it with ``Transcriber.load`` and transcribes
``--audio-s`` seconds of speech-like sound, cut into chunks of each ``--chunks`` length (Lyre
checks chunk by chunk, and Whisper's encoder reads a whole 30 s window for any chunk), with
the options ``Transcriber`` uses. Random weights never say end-of-text, so each chunk's
transcript is made exactly as long as a real one: ``TOKENS_PER_S`` tokens a second of speech,
with faster-whisper's own ``max_new_tokens`` and end-of-text suppressed until then (the
"tokens" column says how many each chunk decoded).

Prints the model's load time and, per chunk length, CPU seconds per audio hour (``--threads``
CTranslate2 threads) and the real-time factor (wall seconds per audio second).
"""

from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.checks.transcript import DECODE_OPTIONS, Transcriber, to_whisper_rate

# About 2.5 words a second of narration, 1.3 GPT-2 tokens a word.
TOKENS_PER_S = 3.3

# The GPT-2 vocabulary below Whisper's special tokens, the 99 languages of the English-only
# models' tokenizer (they predate "yue"), and 1501 timestamps of 20 ms: 51864 tokens in all,
# each at the id it has in openai/whisper-base.en.
GPT2_TOKENS = 50256
LANGUAGES = 99
TIMESTAMPS = 1501
ENGLISH_VOCAB = 51864
END_OF_TEXT = 50256
START_OF_TRANSCRIPT = 50257
PROMPT_TOKENS = 2  # <|startoftranscript|> <|notimestamps|>: an English-only model's prompt


@dataclass(frozen=True)
class WhisperDims:
    """The sizes that set a Whisper's cost; the rest of its configuration is Whisper's own."""

    d_model: int
    layers: int  # encoder and decoder each
    heads: int
    ffn: int


BASE_EN = WhisperDims(d_model=512, layers=6, heads=8, ffn=2048)  # openai/whisper-base.en
TINY = WhisperDims(d_model=64, layers=2, heads=2, ffn=128)  # for the tests


def _special_tokens() -> list[str]:
    from transformers.models.whisper.tokenization_whisper import LANGUAGES as NAMES

    languages = [f"<|{code}|>" for code in list(NAMES)[:LANGUAGES]]
    return [
        *("<|endoftext|>", "<|startoftranscript|>", *languages, "<|translate|>"),
        *("<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>"),
        "<|notimestamps|>",
    ]


def _save_tokenizer(directory: Path) -> None:
    """Whisper's English tokenizer with the real ids: byte-level BPE (the 256 byte tokens, then
    fillers where GPT-2's merged tokens sit), the special tokens, the timestamps."""
    from tokenizers import AddedToken, pre_tokenizers
    from transformers import WhisperTokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())  # GPT-2's first 256 ids, in order
    vocab = {char: i for i, char in enumerate(alphabet)}
    vocab.update({f"<|filler_{i}|>": i for i in range(len(vocab), GPT2_TOKENS)})
    tokenizer = WhisperTokenizer(vocab=vocab, merges=[])
    specials = [AddedToken(t, special=True, normalized=False) for t in _special_tokens()]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(TIMESTAMPS)]
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in stamps])
    assert len(tokenizer) == ENGLISH_VOCAB, len(tokenizer)
    assert tokenizer.convert_tokens_to_ids("<|notimestamps|>") == ENGLISH_VOCAB - TIMESTAMPS - 1
    tokenizer.save_pretrained(directory)


def build_whisper(directory: Path, dims: WhisperDims, seed: int = 0) -> str:
    """An English-only Whisper with random weights, saved as transformers saves one and then
    converted by CTranslate2 to int8 (with the tokenizer and feature extractor faster-whisper
    reads); returns the converted model's directory."""
    import ctranslate2
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration
    from transformers.utils import logging

    logging.disable_progress_bar()
    source, converted = directory / "transformers", directory / "ctranslate2"
    config = WhisperConfig(
        vocab_size=ENGLISH_VOCAB,
        num_mel_bins=80,
        d_model=dims.d_model,
        encoder_layers=dims.layers,
        decoder_layers=dims.layers,
        encoder_attention_heads=dims.heads,
        decoder_attention_heads=dims.heads,
        encoder_ffn_dim=dims.ffn,
        decoder_ffn_dim=dims.ffn,
        bos_token_id=START_OF_TRANSCRIPT,
        decoder_start_token_id=START_OF_TRANSCRIPT,
        eos_token_id=END_OF_TEXT,
        pad_token_id=END_OF_TEXT,
        begin_suppress_tokens=[220, END_OF_TEXT],
    )
    torch.manual_seed(seed)
    WhisperForConditionalGeneration(config).save_pretrained(source)
    WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(source)
    _save_tokenizer(source)
    converter = ctranslate2.converters.TransformersConverter(
        str(source), copy_files=["tokenizer.json", "preprocessor_config.json"]
    )
    return str(converter.convert(str(converted), quantization="int8"))


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """24 kHz float32: a voice's harmonics on a wandering pitch, in syllables of about 4 Hz,
    over a little noise. Whisper's cost does not depend on what it hears; this is for honesty."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.3 * t) + 10 * np.sin(2 * np.pi * 1.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SAMPLE_RATE
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    pcm = 0.2 * voice * syllables + 0.005 * rng.standard_normal(len(t))
    return np.asarray(pcm, dtype=np.float32)


def transcribe_chunk(transcriber: Transcriber, pcm: np.ndarray) -> int:
    """Transcribe one chunk as ``Transcriber.transcribe`` does, with its transcript as long as
    a real one of this length; return the tokens it decoded."""
    tokens = math.ceil(TOKENS_PER_S * len(pcm) / SAMPLE_RATE)
    segments, _ = transcriber.model.transcribe(
        to_whisper_rate(pcm, SAMPLE_RATE),
        **DECODE_OPTIONS,
        # faster-whisper passes CTranslate2 max_length = prompt + max_new_tokens, and
        # CTranslate2 decodes at most half of max_length (src/models/whisper.cc, as
        # openai-whisper's sample_len = n_text_ctx // 2): ask for twice, less the prompt
        max_new_tokens=2 * tokens - PROMPT_TOKENS,
        suppress_tokens=[-1, END_OF_TEXT],  # -1: faster-whisper's usual non-speech symbols
    )
    return sum(len(segment.tokens) for segment in segments)


def measure(transcriber: Transcriber, chunk_s: float, audio_s: float) -> tuple[float, float, int]:
    """CPU seconds per audio hour, real-time factor, tokens per chunk, over ``audio_s``."""
    chunks = [speech_like(chunk_s, seed) for seed in range(max(1, round(audio_s / chunk_s)))]
    transcribe_chunk(transcriber, chunks[0])  # warm up: first-call allocations
    cpu, wall, tokens = time.process_time(), time.perf_counter(), 0
    for pcm in chunks:
        tokens += transcribe_chunk(transcriber, pcm)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    heard = chunk_s * len(chunks)
    return cpu / heard * 3600, wall / heard, tokens // len(chunks)


def cpu_name() -> str:
    """The CPU's model name (Linux), for reading the figures later."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None, dims: WhisperDims = BASE_EN) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CTranslate2 threads")
    parser.add_argument("--chunks", default="8,17,27", help="chunk lengths, seconds")
    parser.add_argument("--audio-s", type=float, default=60.0, help="audio per chunk length")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model = build_whisper(Path(tmp), dims)
        built = time.perf_counter() - started
        started = time.perf_counter()
        transcriber = Transcriber.load(model, cpu_threads=args.threads)
        loaded = time.perf_counter() - started
    print(f"cpu: {cpu_name()}")
    print(f"whisper {dims} int8, random weights: built and converted in {built:.1f} s")
    print(f"model load: {loaded:.2f} s; {args.threads} CTranslate2 thread(s)")
    print(f"{'chunk s':>8} {'chunks':>6} {'tokens':>6} {'CPU s/audio h':>13} {'RTF':>6}")
    for chunk_s in (float(s) for s in args.chunks.split(",")):
        cpu_per_hour, rtf, tokens = measure(transcriber, chunk_s, args.audio_s)
        count = max(1, round(args.audio_s / chunk_s))
        print(f"{chunk_s:>8.0f} {count:>6} {tokens:>6} {cpu_per_hour:>13.0f} {rtf:>6.3f}")


if __name__ == "__main__":
    main()
