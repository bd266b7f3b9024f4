"""The tiled decoder's fused loops against plain float64 NumPy."""

import numpy as np
import pytest

from shared.snac import snake_kernels


def test_snake_matches_sin_squared_over_a_wide_range():
    u = np.linspace(-3000, 3000, 600_001, dtype=np.float32)  # beyond any activation seen
    scale, shift = np.ones(1, np.float32), np.zeros(1, np.float32)
    out = np.empty((u.size, 1), np.float32)
    snake_kernels.snake(u[:, None], scale, shift, out)
    exact = u.astype(np.float64) + np.sin(u.astype(np.float64)) ** 2
    # within a few fp32 roundings of the result (ulp is 6e-8 relative)
    assert np.all(np.abs(out[:, 0] - exact) <= 1e-6 + 3e-7 * np.abs(exact))


def test_snake_scales_and_shifts_each_column():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)).astype(np.float32)
    scale, shift = (
        rng.uniform(0.2, 3, 8).astype(np.float32),
        rng.standard_normal(8).astype(np.float32),
    )
    out = np.empty_like(x)
    snake_kernels.snake(x, scale, shift, out)
    u = scale.astype(np.float64) * x + shift
    assert np.allclose(out, u + np.sin(u) ** 2, atol=1e-5)


@pytest.mark.parametrize("dilation", [1, 3, 9])
def test_depthwise_snake_is_a_dilated_seven_tap_filter_then_snake(dilation):
    rng = np.random.default_rng(dilation)
    rows, channels = 40, 16
    x = rng.standard_normal((rows + 6 * dilation, channels)).astype(np.float32)
    taps = rng.standard_normal((7, channels)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    out = np.empty((rows, channels), np.float32)
    snake_kernels.depthwise_snake(x, taps, bias, dilation, out)
    v = bias + sum(
        taps[k] * x[k * dilation : k * dilation + rows].astype(np.float64) for k in range(7)
    )
    assert np.allclose(out, v + np.sin(v) ** 2, atol=1e-4)
