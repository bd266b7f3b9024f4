from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from shared.snac import int16_gemm, products, tiled
from shared.snac.decoder import SnacDecoder
from shared.snac.noise import stock_noise
from shared.speech.codec import codes_from_frames


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


def stock_decode(model, codes, seed: int) -> np.ndarray:
    """SNAC's own decoder, with Lyre's keyed noise for the chunk."""
    with torch.inference_mode(), stock_noise(seed):
        audio = model.decode([torch.from_numpy(lv)[None] for lv in codes.levels])
    return audio.reshape(-1).clamp(-1, 1).numpy()


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((reference - other) ** 2).sum()))


@pytest.fixture(scope="module")
def stock(snac_dir):
    """The reference; never handed to SnacDecoder, which folds weight norm in place."""
    from snac import SNAC

    return SNAC.from_pretrained(str(snac_dir)).eval()


@pytest.fixture
def ours(snac_dir):
    return lambda **kwargs: SnacDecoder.load(str(snac_dir), **kwargs)


def test_plain_path_matches_the_stock_decoder_given_the_same_noise(stock, ours):
    codes = random_codes(10, seed=3)
    pcm = ours(path="plain").decode(codes, seed=21)
    assert np.allclose(pcm, stock_decode(stock, codes, 21), atol=1e-5)  # folded weight norm


# 40 frames span several tiles in the last three blocks; 1 and 3 frames are shorter than one.
@pytest.mark.parametrize("frames", [1, 3, 40])
def test_tiled_path_matches_the_stock_decoder_within_bf16_rounding(stock, ours, frames):
    codes = random_codes(frames, seed=frames)
    pcm = ours().decode(codes, seed=7)
    assert snr_db(stock_decode(stock, codes, 7), pcm) >= 30


def test_bf16_products_stay_within_bf16_rounding_on_any_cpu(stock, ours):
    """The bf16 branch, exercised even where the CPU has no bf16 (emulated, so a short chunk:
    tiling over a longer one is the fp32 test's)."""
    codes = random_codes(8, seed=5)
    pcm = ours(products="bf16").decode(codes, seed=8)
    assert snr_db(stock_decode(stock, codes, 8), pcm) >= 30


@pytest.mark.skipif(not int16_gemm.supported(), reason="int16 products need AVX2")
def test_int16_products_stay_far_within_the_target(stock, ours):
    """12-bit operands: ≈ 60 dB from the stock decode, where bf16 gives ≈ 45."""
    codes = random_codes(40, seed=6)
    pcm = ours(products="int16").decode(codes, seed=10)
    assert snr_db(stock_decode(stock, codes, 10), pcm) >= 50


def test_tiles_in_fp32_give_the_stock_output(stock, ours):
    """With fp32 matrix products only the arithmetic's order differs: tiling loses nothing."""
    codes = random_codes(40, seed=4)
    pcm = ours(products="fp32").decode(codes, seed=9)
    assert np.allclose(pcm, stock_decode(stock, codes, 9), atol=2e-5)


def test_auto_picks_the_fastest_precision_this_cpu_has(snac_dir):
    assert SnacDecoder.load(str(snac_dir)).tiled.precision == products.fastest_precision()


@pytest.mark.parametrize("length", [1, 1023, 1024, 1500, 4096 * 7 + 13])
def test_tiles_cover_the_chunk_with_no_tile_shorter_than_half(length):
    bounds = tiled.tiles(length, 1024)
    assert bounds[0][0] == 0 and bounds[-1][1] == length
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    assert all(end - start >= min(length, 512) for start, end in bounds)


def test_the_setting_picks_the_path(snac_dir):
    from shared.infra.settings import OrpheusSettings

    plain = OrpheusSettings(snac_model=str(snac_dir), snac_decoder="plain")
    assert SnacDecoder.from_settings(plain).tiled is None
    assert SnacDecoder.from_settings(OrpheusSettings(snac_model=str(snac_dir))).tiled is not None
    exact = OrpheusSettings(snac_model=str(snac_dir), snac_products="fp32")
    assert SnacDecoder.from_settings(exact).tiled.precision == "fp32"


def test_an_unknown_precision_is_refused_by_the_settings():
    from pydantic import ValidationError

    from shared.infra.settings import OrpheusSettings

    with pytest.raises(ValidationError, match="snac_products"):
        OrpheusSettings(snac_products="int8")


def test_no_frames_decode_to_no_samples(snac_dir):
    assert SnacDecoder.load(str(snac_dir)).decode(random_codes(0), seed=0).shape == (0,)


def test_a_zero_snake_alpha_asks_for_the_plain_path(snac_dir):
    from snac import SNAC

    model = SNAC.from_pretrained(str(snac_dir))
    with torch.no_grad():
        model.decoder.model[6].alpha[0, 0, 0] = 0
    with pytest.raises(tiled.AlphaNotFoldable):
        SnacDecoder(model)


def test_int16_is_refused_where_numba_does_not_compile_for_the_host(snac_dir, monkeypatch):
    import numba

    from shared.infra.settings import UnsupportedSetting

    monkeypatch.setattr(numba.config, "CPU_NAME", "generic")
    assert products.fastest_precision() != "int16"
    with pytest.raises(UnsupportedSetting, match="SNAC_PRODUCTS=int16 needs"):
        SnacDecoder.load(str(snac_dir), products="int16")
