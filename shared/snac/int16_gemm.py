"""Matrix products in 16-bit integers for x86 CPUs with AVX2 and neither AVX-512 nor bf16.

On such a core (AMD Zen 2/3, Intel before Ice Lake server) fp32 is the fastest float a product
can take: two 8-wide FMAs per cycle. ``vpmaddwd`` multiplies sixteen int16 pairs and adds
neighbours into eight int32 in one instruction at the same rate: twice the multiply-adds. With
operands of 12 bits (±2047) and sums over 256 values at a time the int32 cannot overflow
(256·2047² < 2³¹), and a product is ≈ 60 dB from the fp32 one (the 8-bit products of int8
kernels give ≈ 35 dB through the decoder, too close to the 30 dB target).

- Activations (rows of ``x``) are quantised per row, weights per output column: a product is
  ``(qx @ qw) · row_scale · column_scale``, dequantised and added to ``out`` in the kernel.
- The kernel broadcasts one row's pair of values (32 bits) against sixteen columns' pairs (two
  registers) and keeps 6×16 sums in twelve registers. ``x`` stays row-major (six rows are read
  side by side); the weights are laid out once as ``(N/16, K/2, 16, 2)``.
- The 6×16 kernel is written in LLVM IR (Numba's ``intrinsic``) because LLVM does not find
  ``vpmaddwd`` in a loop on its own; the loops around it are plain Numba.

``bench/decode.py`` measures the decoder with these products; docs/performance.md has the figures.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

ROWS, COLUMNS = 6, 16  # the kernel's tile: 12 accumulator registers of AVX2's 16
VECTORS = COLUMNS // 8  # 8 int32 lanes per register
LEVELS = 2047  # ±LEVELS: 12-bit operands
DEPTH = 256  # values summed in int32 before they are dequantised (256·2047² < 2**31)
BLOCK_ROWS = 96  # rows of x per pass over the weights (96 × 256 values × 2 B = 48 KB: in L2)


def supported() -> bool:
    """Whether this CPU has AVX2 (PyTorch's dispatch level is AVX2 or AVX-512) and Numba
    compiles for it (``NUMBA_CPU_NAME`` unset: a generic target has no ``vpmaddwd``)."""
    host = getattr(numba.config, "CPU_NAME", None) in (None, "host")
    return host and torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512")


_ADDRESS, _COUNT = types.uintp, types.intp


@intrinsic
def _tile(typingctx, x, x_stride, w, pairs, out, out_stride, row_scales, column_scales):
    """``out[6, 16] += Σ x·w`` over ``pairs`` pairs of values, dequantised by the two scales.

    Addresses are raw: ``x`` at six int16 rows ``x_stride`` pairs apart, ``w`` at a strip's
    ``(pairs, 16, 2)`` int16, ``out`` at float32 rows ``out_stride`` apart, six row scales and
    sixteen column scales (float32).
    """
    sig = types.void(_ADDRESS, _COUNT, _ADDRESS, _COUNT, _ADDRESS, _COUNT, _ADDRESS, _ADDRESS)

    def codegen(context, builder, signature, args):
        x, x_stride, w, pairs, out, out_stride, row_scales, column_scales = args
        i32, f32 = ir.IntType(32), ir.FloatType()
        i16x16, i32x8, f32x8 = (
            ir.VectorType(ir.IntType(16), 16),
            ir.VectorType(i32, 8),
            ir.VectorType(f32, 8),
        )
        madd_type = ir.FunctionType(i32x8, [i16x16, i16x16])
        madd = cgutils.get_or_insert_function(builder.module, madd_type, "llvm.x86.avx2.pmadd.wd")

        def n(value):
            return ir.Constant(pairs.type, value)

        def pointer(address, element):
            return builder.inttoptr(address, element.as_pointer())

        def load(base, offset, align):
            return builder.load(builder.gep(base, [offset]), align=align)

        def broadcast(value, vector_type):
            undef = ir.Constant(vector_type, ir.Undefined)
            lane0 = builder.insert_element(undef, value, ir.Constant(i32, 0))
            return builder.shuffle_vector(lane0, undef, ir.Constant(ir.VectorType(i32, 8), [0] * 8))

        # accumulators as allocas: LLVM promotes them to registers
        zero = ir.Constant(i32x8, None)
        sums = [
            [cgutils.alloca_once_value(builder, zero) for _ in range(VECTORS)] for _ in range(ROWS)
        ]
        x_pairs, w_vectors = pointer(x, i32), pointer(w, i16x16)
        with cgutils.for_range(builder, pairs) as loop:
            k = loop.index
            strip = builder.mul(k, n(VECTORS))
            w_k = [load(w_vectors, builder.add(strip, n(v)), 2) for v in range(VECTORS)]
            for r in range(ROWS):
                pair = load(x_pairs, builder.add(builder.mul(x_stride, n(r)), k), 2)
                x_rk = builder.bitcast(broadcast(pair, i32x8), i16x16)  # (x[r,2k], x[r,2k+1]) × 8
                for v in range(VECTORS):
                    product = builder.call(madd, [x_rk, w_k[v]])
                    builder.store(builder.add(builder.load(sums[r][v]), product), sums[r][v])

        # dequantise: out[r, columns] += sum · row_scale[r] · column_scale[columns]
        out_rows, scales = pointer(out, f32), pointer(row_scales, f32)
        column_scale = [load(pointer(column_scales, f32x8), n(v), 4) for v in range(VECTORS)]
        for r in range(ROWS):
            row_scale = broadcast(load(scales, n(r), 4), f32x8)
            for v in range(VECTORS):
                at = builder.add(builder.mul(out_stride, n(r)), n(8 * v))
                target = builder.bitcast(builder.gep(out_rows, [at]), f32x8.as_pointer())
                scale = builder.fmul(row_scale, column_scale[v])
                value = builder.fmul(builder.sitofp(builder.load(sums[r][v]), f32x8), scale)
                builder.store(builder.fadd(builder.load(target, align=4), value), target, align=4)
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(cache=True, nogil=True, boundscheck=False)
def accumulate(x, row_scales, w, column_scales, out):  # type: ignore[no-untyped-def]
    """``out += x @ w`` for an ``Int16Operand``'s ``x`` and ``Int16Weights``' ``w``.

    ``x`` is int16 (rows rounded up to a multiple of 6, K); ``out`` float32 (rows, columns) with
    unit column stride, ``columns`` a multiple of 16.
    """
    rows, columns = out.shape
    blocks, pairs = x.shape[0] // ROWS, x.shape[1] // 2
    stride = out.strides[0] // 4
    spill = np.zeros((ROWS, columns), np.float32)  # the last block's rows past ``rows``
    depth = DEPTH // 2
    for k in range(0, pairs, depth):
        kc = min(depth, pairs - k)
        for b0 in range(0, blocks, BLOCK_ROWS // ROWS):
            for j in range(columns // COLUMNS):
                strip = w[j, k].ctypes.data
                scales = column_scales[j * COLUMNS :].ctypes.data
                for b in range(b0, min(blocks, b0 + BLOCK_ROWS // ROWS)):
                    if (b + 1) * ROWS <= rows:
                        target, target_stride = out[b * ROWS, j * COLUMNS :].ctypes.data, stride
                    else:
                        target, target_stride = spill[0, j * COLUMNS :].ctypes.data, columns
                    row_scale = row_scales[b * ROWS :].ctypes.data
                    block = x[b * ROWS, 2 * k :].ctypes.data
                    _tile(block, pairs, strip, kc, target, target_stride, row_scale, scales)
    first = (blocks - 1) * ROWS
    for r in range(rows - first if rows % ROWS else 0):
        out[first + r] += spill[r]


@intrinsic
def _float_from_bits(typingctx, bits):
    """The float32 whose bits are the int32 ``bits``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


@numba.njit(inline="always", fastmath=True)
def quantise_row(row, q):  # type: ignore[no-untyped-def]
    """float32 ``row`` → int16 ``q`` (±LEVELS); returns the row's scale (0 for a zero row)."""
    bits = row.view(np.int32)  # |v|'s bits order as |v| does, and an int max vectorises
    largest = np.int32(0)
    for k in range(len(row)):
        largest = max(largest, np.int32(bits[k] & np.int32(0x7FFFFFFF)))
    peak = _float_from_bits(largest)
    scale = peak / np.float32(LEVELS)
    inverse = np.float32(1) / scale if peak > 0 else np.float32(0)
    for k in range(len(row)):
        q[k] = np.int16(np.rint(row[k] * inverse))
    return scale


@numba.njit(fastmath=True, cache=True, nogil=True)
def quantise_rows(x, packed, scales):  # type: ignore[no-untyped-def]
    """float32 (rows, K) → ``packed`` and ``scales`` of an ``Int16Operand`` of as many rows."""
    rows = x.shape[0]
    packed[rows:] = 0
    scales[rows:] = 0
    for i in range(rows):
        scales[i] = quantise_row(x[i], packed[i])


class Int16Operand:
    """Rows of activations quantised for ``Int16Weights.accumulate``: int16 ``packed`` (rows
    rounded up to a multiple of 6, the extra rows zero) and a scale per row."""

    def __init__(self, rows: int, depth: int) -> None:
        """Room for ``rows`` rows, which ``quantise_rows`` fills."""
        self.rows = rows
        self.packed = np.empty((-(-rows // ROWS) * ROWS, depth), np.int16)
        self.scales = np.empty(len(self.packed), np.float32)

    @classmethod
    def quantise(cls, x: torch.Tensor) -> Int16Operand:
        operand = cls(*x.shape)
        quantise_rows(x.numpy(), operand.packed, operand.scales)
        return operand


class Int16Weights:
    """A (K, N) float weight matrix in the kernel's layout, per-column scales."""

    def __init__(self, weight: torch.Tensor) -> None:
        depth, columns = weight.shape
        if depth % 2 or columns % COLUMNS:
            raise ValueError(
                f"int16 products need even K and N a multiple of 16, got {depth}×{columns}"
            )
        w = weight.double().numpy()
        peak = np.abs(w).max(axis=0)
        self.scales = np.where(peak > 0, peak / LEVELS, 1).astype(np.float32)
        q = np.rint(w / self.scales).astype(np.int16)
        layout = q.reshape(depth // 2, 2, columns // COLUMNS, COLUMNS).transpose(2, 0, 3, 1)
        self.packed = np.ascontiguousarray(layout)
        self.shape = (depth, columns)

    def accumulate(self, x: Int16Operand, out: torch.Tensor) -> torch.Tensor:
        """``out += x @ weight`` (float32 rows of ``out``, as many as ``x`` has)."""
        accumulate(x.packed, x.scales, self.packed, self.scales, out.numpy())
        return out


def compile_now() -> None:
    """Compile (or load from the cache) the kernels, as ``snake_kernels.compile_now`` does."""
    weights = Int16Weights(torch.ones(2, COLUMNS))
    weights.accumulate(Int16Operand.quantise(torch.ones(1, 2)), torch.zeros(1, COLUMNS))
