"""The int16 matrix products against float64 NumPy."""

import numpy as np
import pytest
import torch

from shared.snac import int16_gemm

pytestmark = pytest.mark.skipif(not int16_gemm.supported(), reason="int16 products need AVX2")


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10((reference**2).sum() / ((reference - other) ** 2).sum()))


# rows: fewer than a tile, not a multiple of 6, many blocks; depth: one pass of 256, several
# passes with a remainder; columns: one strip, many strips
@pytest.mark.parametrize(
    ("rows", "depth", "columns"),
    [(1, 2, 16), (5, 64, 16), (7, 128, 32), (97, 256, 64), (203, 1030, 48), (1000, 512, 512)],
)
def test_products_are_within_12_bit_rounding_of_float64(rows, depth, columns):
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, depth)).astype(np.float32)
    w = rng.standard_normal((depth, columns)).astype(np.float32)
    start = rng.standard_normal((rows, columns)).astype(np.float32)
    out = torch.from_numpy(start.copy())
    weights = int16_gemm.Int16Weights(torch.from_numpy(w))
    weights.accumulate(int16_gemm.Int16Operand.quantise(torch.from_numpy(x)), out)
    exact = x.astype(np.float64) @ w
    assert snr_db(exact, out.numpy() - start) >= 55  # ≈ 60 dB: two 12-bit roundings


def test_worst_case_operands_do_not_overflow_the_int32_sums():
    """Every value at full scale with one sign: 256·2047² per pass, half of 2³¹."""
    x, w = torch.ones(12, 1024), -torch.ones(1024, 16)
    out = torch.zeros(12, 16)
    int16_gemm.Int16Weights(w).accumulate(int16_gemm.Int16Operand.quantise(x), out)
    assert torch.allclose(out, torch.full((12, 16), -1024.0), rtol=1e-4)


def test_the_output_may_be_rows_of_a_wider_tensor_and_zero_rows_stay_zero():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((9, 64)).astype(np.float32)
    x[4] = 0  # a row of zeros has scale 0: no division by it
    w = rng.standard_normal((64, 32)).astype(np.float32)
    wide = torch.zeros(9, 48)
    out = wide[:, 8:40]  # rows 48 floats apart, starting 8 in
    int16_gemm.Int16Weights(torch.from_numpy(w)).accumulate(
        int16_gemm.Int16Operand.quantise(torch.from_numpy(x)), out
    )
    assert snr_db(x.astype(np.float64) @ w, out.numpy()) >= 55
    assert not out[4].any() and not wide[:, :8].any() and not wide[:, 40:].any()


def test_weights_the_kernel_cannot_tile_are_refused():
    with pytest.raises(ValueError, match="multiple of 16"):
        int16_gemm.Int16Weights(torch.ones(64, 24))
    with pytest.raises(ValueError, match="even K"):
        int16_gemm.Int16Weights(torch.ones(63, 16))
