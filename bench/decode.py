"""SNAC decode speed: the stock ``snac`` decode against Lyre's decoder, same chunks, same threads.

    python bench/decode.py [--threads 1] [--snac DIR_OR_HUB_ID] [--products auto|bf16|int16|fp32]

Prints, per decoder (stock; Lyre's plain path; Lyre's tiled path, the default), audio seconds
decoded per CPU-second per core, the ratio to the stock decode, and fidelity (SNR against the
fp32 stock output with the same noise); then the same chunks decoded as a live listener hears
them (``shared.snac.stream``: frames arriving one at a time, four decoded a step after the
first four), against the tiled decode of the whole chunks. Without SNAC
weights it builds SNAC 24 kHz with random weights: same architecture, so the same cost.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import get_args

import numpy as np
import torch

from shared.audio import SAMPLE_RATE
from shared.infra.settings import ProductPrecision, UnsupportedSetting
from shared.snac.decoder import SNAC_24KHZ_CONFIG, SnacDecoder
from shared.snac.noise import stock_noise
from shared.snac.pace import Pace
from shared.snac.products import check_runs_here, fastest_precision
from shared.snac.stream import StreamDecoder
from shared.speech.codec import SAMPLES_PER_FRAME, SnacCodes, codes_from_frames
from shared.speech.weights import locate_model

CHUNK_SECONDS = (5, 8, 12, 17, 23, 30)  # the lengths the chunker produces


def load_snac(name: str | None):
    from snac import SNAC

    if name:
        return SNAC.from_pretrained(locate_model(name)).eval()
    torch.manual_seed(0)
    return SNAC(**SNAC_24KHZ_CONFIG).eval()


def chunks() -> list[SnacCodes]:
    rng = np.random.default_rng(0)
    return [
        codes_from_frames(
            rng.integers(0, 4096, (round(s * SAMPLE_RATE / SAMPLES_PER_FRAME), 7)).tolist()
        )
        for s in CHUNK_SECONDS
    ]


def stock_decode(model, codes: SnacCodes, seed: int) -> np.ndarray:
    """SNAC's own decode, with the noise Lyre's decoders draw for the chunk."""
    with torch.inference_mode(), stock_noise(seed):
        audio = model.decode([torch.from_numpy(level)[None] for level in codes.levels])
    return audio.reshape(-1).clamp(-1, 1).numpy()


def measure(decode, work: list[SnacCodes], repeats: int = 1) -> tuple[float, list[np.ndarray]]:
    """Audio seconds per CPU-second (the median of ``repeats`` passes) and the last outputs."""
    decode(work[0], 0)  # warm-up
    speeds = []
    for _ in range(repeats):
        started = time.process_time()
        outputs = [decode(codes, i) for i, codes in enumerate(work)]
        speeds.append(sum(c.samples for c in work) / SAMPLE_RATE / (time.process_time() - started))
    return float(np.median(speeds)), outputs  # per CPU-second: already per core


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(((reference - other) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((reference**2).sum()) / noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--snac", default=os.environ.get("LYRE_ORPHEUS__SNAC_MODEL"))
    parser.add_argument(
        "--products",
        choices=get_args(ProductPrecision),
        default="auto",
        help="the tiled decoder's matrix products (auto: the fastest this CPU has)",
    )
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    products = fastest_precision() if args.products == "auto" else args.products
    try:
        check_runs_here(products)  # before the minutes of stock decoding
    except UnsupportedSetting as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    model = load_snac(args.snac)
    work = chunks()
    audio = sum(c.samples for c in work) / SAMPLE_RATE
    print(
        f"{len(work)} chunks, {audio:.0f} s of audio, {args.threads} thread(s), "
        f"torch {torch.__version__}, tiled matrix products in {products}"
    )
    stock_speed, reference = measure(lambda c, s: stock_decode(model, c, s), work)
    print(f"stock snac   {stock_speed:6.2f} x real time per core")
    for path, repeats in (("plain", 1), ("tiled", 3)):
        lyre = SnacDecoder(load_snac(args.snac), path=path, products=products)  # its own copy
        speed, ours = measure(lyre.decode, work, repeats)
        worst = min(snr_db(r, o) for r, o in zip(reference, ours, strict=True))
        print(
            f"lyre {path}  {speed:6.2f} x real time per core   "
            f"{speed / stock_speed:4.2f} x stock   SNR {worst:.1f} dB (worst chunk)"
        )
    assert lyre.tiled is not None
    streams = StreamDecoder(lyre.tiled)
    live_speed, heard = measure(lambda c, s: heard_live(streams, c, s), work, 3)
    worst = min(snr_db(w, h) for w, h in zip(ours, heard, strict=True))
    print(
        f"lyre live   {live_speed:6.2f} x real time per core   {speed / live_speed:4.2f} x the "
        f"tiled decode's CPU   SNR {worst:.1f} dB against it (worst chunk)"
    )


def heard_live(streams: StreamDecoder, codes: SnacCodes, seed: int) -> np.ndarray:
    """A chunk decoded as a live listener hears it: its frames arriving one at a time, decoded
    at the listener's pace (``shared.snac.pace``), as the api decodes them."""
    stream, pace, pieces = streams.begin(seed), Pace(), []
    for frame in range(codes.frames):
        due = pace.feed(codes.select(np.array([frame])))
        if due is not None:
            pieces.append(streams.step(stream, *due))
    due = pace.finish()
    if due is not None:
        pieces.append(streams.step(stream, *due))
    return np.concatenate(pieces)


if __name__ == "__main__":
    main()
