"""GPU check: Orpheus-shaped decode steps through transformers, and SNAC decode, on one device.

    python bench/gpu.py                      # on a GPU machine: the real shapes, a few minutes
    python bench/gpu.py --device cpu --shape tiny --batches 1,4    # a smoke run anywhere

Needs torch, transformers and snac; no vLLM, no network, no weights: both models are built on the
spot with random weights (same shapes, so the same cost). Prints, per batch, the median time of
one decode step of a Llama 3.2 3B-shaped model with Orpheus's vocabulary (bfloat16, one new token
per sequence on a KV cache already holding ``--context`` tokens), its tokens/s, the audio seconds
per second those tokens make (7 tokens per 2048-sample frame at 24 kHz), each stream's speed
against real time, and peak device memory while decoding; then SNAC 24 kHz decode speed of
random codes in audio seconds per second, per batch and dtype (fp32 is the reference).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import inspect
import platform
import statistics
import time
from collections.abc import Callable, Iterator

import torch

FRAME_TOKENS = 7  # Orpheus: one SNAC frame is 7 tokens (1 + 2 + 4 codes)
SAMPLES_PER_FRAME = 2048
SAMPLE_RATE = 24000
TOKENS_PER_AUDIO_SECOND = FRAME_TOKENS * SAMPLE_RATE / SAMPLES_PER_FRAME  # 82.03
WARMUP_STEPS = 3
SNAC_REPEATS = 3
GIB = 2**30

LLAMA_COMMON = {
    "vocab_size": 156940,  # Orpheus's vocabulary: Llama 3's plus the audio tokens
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
}
LLAMA_SHAPES = {
    "3b": {  # Llama 3.2 3B
        "hidden_size": 3072,
        "intermediate_size": 8192,
        "num_hidden_layers": 28,
        "num_attention_heads": 24,
        "num_key_value_heads": 8,
        "head_dim": 128,
    },
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
    },
}
# as shared.snac.decoder.SNAC_24KHZ_CONFIG; this script imports nothing of Lyre's
SNAC_24KHZ_CONFIG = {
    "sampling_rate": SAMPLE_RATE,
    "encoder_dim": 48,
    "encoder_rates": [2, 4, 8, 8],
    "decoder_dim": 1024,
    "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None,
    "codebook_size": 4096,
    "codebook_dim": 8,
    "vq_strides": [4, 2, 1],
    "noise": True,
    "depthwise": True,
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def positive_int(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer: {text!r}")
    return value


def positive_ints(text: str) -> list[int]:
    """``1,16,64`` → [1, 16, 64]."""
    return [positive_int(part) for part in text.split(",")]


def dtype_names(text: str) -> list[str]:
    names = text.split(",")
    if not all(name in DTYPES for name in names):
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(DTYPES)}: {text!r}")
    return names


def device_arg(text: str) -> torch.device:
    try:
        return torch.device(text)
    except RuntimeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, work: Callable[[], object]) -> float:
    """Wall seconds of one call of ``work``, the device drained before and after."""
    sync(device)
    started = time.perf_counter()
    work()
    sync(device)
    return time.perf_counter() - started


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def header(device: torch.device) -> None:
    import transformers

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    print(f"device {device}: {name or 'cpu'}")
    print(
        f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'}), "
        f"transformers {transformers.__version__}, snac {importlib.metadata.version('snac')}"
    )


def build_lm(shape: str, device: torch.device):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**LLAMA_SHAPES[shape], **LLAMA_COMMON)
    torch.manual_seed(0)
    with torch.device(device), default_dtype(torch.bfloat16):  # random weights, made in place
        return LlamaForCausalLM(config).eval()  # RoPE's frequencies stay float32


def cache_keyword(model) -> str:
    """transformers 5 calls the KV cache ``cache``; earlier versions ``past_key_values``."""
    parameters = inspect.signature(model.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def new_cache(kind: str, model, batch: int, length: int):
    from transformers import DynamicCache, StaticCache

    if kind == "dynamic":
        return DynamicCache()
    parameters = inspect.signature(StaticCache.__init__).parameters
    allocated_up_front = {}  # transformers < 4.56 allocates at construction; later ones lazily
    for name in ("max_batch_size", "batch_size"):
        if name in parameters:
            allocated_up_front = {name: batch, "device": model.device, "dtype": model.dtype}
            break
    return StaticCache(config=model.config, max_cache_len=length, **allocated_up_front)


def decode_steps(model, args: argparse.Namespace, batch: int) -> list[float]:
    """Seconds per decode step at ``batch``, after a prefill of ``--context`` tokens."""
    device, vocab = model.device, model.config.vocab_size
    cache = new_cache(args.cache, model, batch, args.context + WARMUP_STEPS + args.steps)
    keyword = {cache_keyword(model): cache, "use_cache": True}
    prompt = torch.randint(0, vocab, (batch, args.context), device=device)
    model.model(input_ids=prompt, **keyword)  # the body only: no logits for the whole prompt
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(WARMUP_STEPS + args.steps):
        token = torch.randint(0, vocab, (batch, 1), device=device)
        seconds = timed(device, lambda token=token: model(input_ids=token, **keyword))
        if step >= WARMUP_STEPS:
            times.append(seconds)
    return times


def lm_row(model, args: argparse.Namespace, batch: int) -> float:
    """Prints one table row; returns tokens/s (0 where the batch does not fit)."""
    try:
        with torch.inference_mode():
            step = statistics.median(decode_steps(model, args, batch))
    except torch.cuda.OutOfMemoryError:
        print(f"{batch:>6}  out of memory")
        return 0.0
    finally:
        gc.collect()
        if model.device.type == "cuda":
            torch.cuda.empty_cache()
    tokens = batch / step
    stream = 1 / step / TOKENS_PER_AUDIO_SECOND  # one sequence's audio seconds per second
    peak = (
        f"{torch.cuda.max_memory_allocated(model.device) / GIB:8.2f}"
        if model.device.type == "cuda"
        else "     n/a"
    )
    print(
        f"{batch:>6} {step * 1e3:9.2f} {tokens:10.0f} {tokens / TOKENS_PER_AUDIO_SECOND:10.2f}"
        f" {stream:9.2f} {peak}"
    )
    return tokens


def bench_lm(args: argparse.Namespace) -> None:
    model = build_lm(args.shape, args.device)
    params = sum(p.numel() for p in model.parameters()) / 1e9
    print(
        f"\nlanguage model: {args.shape} shapes, {params:.2f} B parameters, bfloat16, "
        f"attention {model.config._attn_implementation}, {args.cache} cache, "
        f"context {args.context}, median of {args.steps} steps after {WARMUP_STEPS}"
    )
    print(" batch   step ms   tokens/s  audio s/s  x RT/seq peak GiB")
    rates = {batch: lm_row(model, args, batch) for batch in args.batches}
    best = max(rates, key=rates.__getitem__)
    if rates[best] == 0:
        print("lm decode: no batch fitted")
        return
    print(
        f"lm decode: {rates[best]:.0f} tokens/s at batch {best} = "
        f"{rates[best] / TOKENS_PER_AUDIO_SECOND:.1f} audio seconds per second "
        f"({TOKENS_PER_AUDIO_SECOND:.2f} tokens per audio second)"
    )


def build_snac(device: torch.device, dtype: torch.dtype):
    from snac import SNAC

    torch.manual_seed(0)
    return SNAC(**SNAC_24KHZ_CONFIG).eval().to(device=device, dtype=dtype)


def snac_speed(model, batch: int, frames: int) -> float:
    """Audio seconds decoded per wall second: the median of a few passes after a warm-up."""
    device = next(model.parameters()).device
    codes = [torch.randint(0, 4096, (batch, frames * n), device=device) for n in (1, 2, 4)]
    with torch.inference_mode():
        samples = model.decode(codes).numel()  # also the warm-up
        times = [timed(device, lambda: model.decode(codes)) for _ in range(SNAC_REPEATS)]
    return samples / SAMPLE_RATE / statistics.median(times)


def bench_snac(args: argparse.Namespace) -> None:
    seconds = args.snac_frames * SAMPLES_PER_FRAME / SAMPLE_RATE
    tf32 = args.device.type == "cuda" and torch.backends.cudnn.allow_tf32
    print(
        f"\nsnac 24 kHz decode: {args.snac_frames} frames ({seconds:.1f} s) per item, "
        f"median of {SNAC_REPEATS} passes{', fp32 convolutions in TF32 (cuDNN)' if tf32 else ''}"
    )
    print(" dtype  batch  audio s/s")
    best: tuple[float, str, int] = (0.0, "", 0)
    for name in args.snac_dtypes:
        model = build_snac(args.device, DTYPES[name])
        for batch in args.snac_batches:
            try:
                speed = snac_speed(model, batch, args.snac_frames)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:>6} {batch:>6}  out of memory")
                continue
            print(f"{name:>6} {batch:>6} {speed:10.1f}")
            best = max(best, (speed, name, batch))
        del model
    if best[0]:
        print(f"snac decode: {best[0]:.1f} audio seconds per second ({best[1]}, batch {best[2]})")


def parse(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--device", type=device_arg, default="cuda", help="cuda (default), cuda:N or cpu")
    add("--shape", choices=sorted(LLAMA_SHAPES), default="3b", help="tiny: for a CPU smoke run")
    add("--batches", type=positive_ints, default="1,16,64,256", help="sequences per decode step")
    add(
        "--context", type=positive_int, default=1200, help="tokens in the KV cache (a chunk's mean)"
    )
    add("--steps", type=positive_int, default=20, help="timed decode steps per batch")
    add("--cache", choices=("static", "dynamic"), default="static", help="transformers KV cache")
    add("--snac-frames", type=positive_int, default=352, help="frames per item (352: 30 s)")
    add("--snac-batches", type=positive_ints, default="1,16", help="items per SNAC decode")
    add("--snac-dtypes", type=dtype_names, default="fp32,bf16", help="fp32 is the reference")
    return parser, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    parser, args = parse(argv)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.exit(
            2,
            f"gpu.py: CUDA is not available here (torch {torch.__version__}); "
            "--device cpu --shape tiny makes a smoke run\n",
        )
    header(args.device)
    bench_lm(args)
    bench_snac(args)


if __name__ == "__main__":
    main()
