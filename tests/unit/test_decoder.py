from __future__ import annotations

import numpy as np
import torch

from shared.codec import codes_from_frames
from shared.decoder import SnacDecoder


def random_codes(frames: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return codes_from_frames(rng.integers(0, 4096, size=(frames, 7)).tolist())


def test_loads_from_a_directory_and_decodes_in_one_call(snac_dir):
    decoder = SnacDecoder.load(str(snac_dir))
    pcm = decoder.decode(random_codes(12), seed=5)
    assert pcm.dtype == np.float32 and pcm.shape == (12 * 2048,)
    assert np.isfinite(pcm).all() and np.abs(pcm).max() <= 1


def test_same_seed_same_samples_other_seed_other_samples(snac_dir):
    decoder = SnacDecoder.load(str(snac_dir))
    codes = random_codes(8)
    first, second = decoder.decode(codes, seed=11), decoder.decode(codes, seed=11)
    assert np.array_equal(first, second)
    assert not np.array_equal(first, decoder.decode(codes, seed=12))


def test_matches_the_stock_decoder_given_the_same_noise(snac_dir):
    from snac import SNAC

    stock = SNAC.from_pretrained(str(snac_dir))
    codes = random_codes(10, seed=3)
    torch.manual_seed(21)
    with torch.inference_mode():
        reference = stock.decode([torch.from_numpy(lv)[None] for lv in codes.levels])
    reference = reference.reshape(-1).clamp(-1, 1).numpy()
    ours = SnacDecoder(stock).decode(codes, seed=21)
    assert np.allclose(ours, reference, atol=1e-5)  # folded weight norm, same noise draws


def test_no_frames_decode_to_no_samples(snac_dir):
    assert SnacDecoder.load(str(snac_dir)).decode(random_codes(0), seed=0).shape == (0,)
