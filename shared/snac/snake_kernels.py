"""The tiled decoder's element-wise work as fused loops, compiled by Numba for the host CPU.

In PyTorch each step of ``Snake → depthwise conv → Snake`` is its own pass over a tile, about
fourteen of them per residual unit, and on CPUs with slow caches those passes cost more than the
matrix products. Here each is one loop over the tile, vectorised by LLVM for whatever SIMD the
CPU has (AVX-512, AVX2, NEON). ``sin²`` is a polynomial: reduced by π (sin² has period π) with
a two-part π so that the reduction stays exact for |u| < 2¹⁵·π, then sin by its Taylor series to
the 11th power on [-π/2, π/2] (error < 1e-7, below fp32 rounding of the result).

Compiled on first use and cached beside this file (or in ``NUMBA_CACHE_DIR``). The loops release
the GIL: embedded mode decodes several chunks at once on threads.
"""

from __future__ import annotations

import numba
import numpy as np

_F = np.float32
_INV_PI = _F(1 / np.pi)
_PI_HIGH = _F(3.140625)  # 8 significant bits: k·_PI_HIGH is exact in fp32 for |k| < 2**15
_PI_LOW = _F(np.pi - 3.140625)
_S3, _S5, _S7, _S9, _S11 = (
    _F(-1 / 6),
    _F(1 / 120),
    _F(-1 / 5040),
    _F(1 / 362880),
    _F(-1 / 39916800),
)
_HALF = _F(0.5)


@numba.njit(inline="always", fastmath=True)
def _sin_squared(u):  # type: ignore[no-untyped-def]
    k = np.floor(u * _INV_PI + _HALF)
    r = (u - k * _PI_HIGH) - k * _PI_LOW  # in [-π/2, π/2], sin²(r) = sin²(u)
    r2 = r * r
    s = r + r * r2 * (_S3 + r2 * (_S5 + r2 * (_S7 + r2 * (_S9 + r2 * _S11))))
    return s * s


@numba.njit(fastmath=True, cache=True, nogil=True)
def snake(x, scale, shift, out):  # type: ignore[no-untyped-def]
    """``out = u + sin²(u)`` with ``u = scale·x + shift`` per column; (rows, columns) arrays."""
    rows, columns = x.shape
    for t in range(rows):
        for c in range(columns):
            u = scale[c] * x[t, c] + shift[c]
            out[t, c] = u + _sin_squared(u)


@numba.njit(fastmath=True, cache=True, nogil=True)
def depthwise_snake(x, taps, bias, dilation, out):  # type: ignore[no-untyped-def]
    """``out[t] = v + sin²(v)`` with ``v = bias + Σₖ taps[k]·x[t + k·dilation]``, k < 7.

    ``x`` has ``len(out) + 6·dilation`` rows (the caller pads the chunk's edges with zeros). The
    seven taps are written out so that each output value is one expression in registers.
    """
    rows, columns = out.shape
    t0, t1, t2, t3, t4, t5, t6 = taps[0], taps[1], taps[2], taps[3], taps[4], taps[5], taps[6]
    d = dilation
    for t in range(rows):
        x0, x1, x2, x3 = x[t], x[t + d], x[t + 2 * d], x[t + 3 * d]
        x4, x5, x6 = x[t + 4 * d], x[t + 5 * d], x[t + 6 * d]
        row = out[t]
        for c in range(columns):
            v = bias[c] + t0[c] * x0[c] + t1[c] * x1[c] + t2[c] * x2[c] + t3[c] * x3[c]
            v += t4[c] * x4[c] + t5[c] * x5[c] + t6[c] * x6[c]
            row[c] = v + _sin_squared(v)


def compile_now() -> None:
    """Compile (or load from the cache) both loops for the argument types the decoder passes,
    so that a worker pays for it before it takes work, in the parent before prefork forks."""
    x = np.zeros((7, 2), np.float32)
    ones = np.ones(2, np.float32)
    snake(x, ones, ones, np.empty_like(x))
    depthwise_snake(x, x, ones, 1, np.empty((1, 2), np.float32))
