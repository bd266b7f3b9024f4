"""SNAC decode speed: the stock ``snac`` decode against Lyre's decoder, same chunks, same threads.

    python bench/decode.py [--threads 1] [--snac DIR_OR_HUB_ID]

Prints, per decoder, audio seconds decoded per CPU-second per core, the ratio to the stock
decode, and fidelity (SNR against the fp32 stock output with the same noise). Without SNAC
weights it builds SNAC 24 kHz with random weights: same architecture, so the same cost.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

import numpy as np
import torch

from shared.codec import SAMPLE_RATE, SAMPLES_PER_FRAME, SnacCodes, codes_from_frames
from shared.decoder import SNAC_24KHZ_CONFIG, SnacDecoder
from shared.weights import locate_model

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
    torch.manual_seed(seed)  # the stock NoiseBlock draws from the global generator
    with torch.inference_mode():
        audio = model.decode([torch.from_numpy(level)[None] for level in codes.levels])
    return audio.reshape(-1).clamp(-1, 1).numpy()


def measure(decode, work: list[SnacCodes]) -> tuple[float, list[np.ndarray]]:
    decode(work[0], 0)  # warm-up
    started = time.process_time()
    outputs = [decode(codes, i) for i, codes in enumerate(work)]
    cpu = time.process_time() - started
    audio = sum(c.samples for c in work) / SAMPLE_RATE
    return audio / cpu, outputs  # per CPU-second: already per core


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(((reference - other) ** 2).sum())
    return float("inf") if noise == 0 else 10 * np.log10(float((reference**2).sum()) / noise)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--snac", default=os.environ.get("LYRE_ORPHEUS__SNAC_MODEL"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_snac(args.snac)
    work = chunks()
    audio = sum(c.samples for c in work) / SAMPLE_RATE
    print(
        f"{len(work)} chunks, {audio:.0f} s of audio, {args.threads} thread(s), "
        f"torch {torch.__version__}"
    )
    stock_speed, reference = measure(lambda c, s: stock_decode(model, c, s), work)
    lyre = SnacDecoder(copy.deepcopy(model))
    lyre_speed, ours = measure(lyre.decode, work)
    worst = min(snr_db(r, o) for r, o in zip(reference, ours, strict=True))
    print(f"stock snac   {stock_speed:6.2f} x real time per core")
    print(
        f"lyre         {lyre_speed:6.2f} x real time per core   "
        f"{lyre_speed / stock_speed:4.2f} x stock   SNR {worst:.1f} dB (worst chunk)"
    )


if __name__ == "__main__":
    main()
