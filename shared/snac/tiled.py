"""SNAC's decoder rewritten for one CPU core: time-major tiles, narrow matrix products.

The stock decoder runs each layer over the whole chunk in PyTorch's (channels, time) layout:
every Snake is five passes over tensors far larger than the caches, the dilated depthwise
convolutions take PyTorch's slowest convolution path, and each 100 MB intermediate is freshly
page-faulted. Here the same arithmetic is arranged for the CPU (bench/decode.py measures it,
docs/performance.md has the figures):

- Activations are (time, channels). A 1×1 convolution is one matrix product, a transposed
  convolution with kernel 2·stride is two (even and odd taps) and an overlap-add, a depthwise
  convolution is seven multiply-adds over shifted rows.
- Each upsampling block runs in tiles of ≥ 256 KB per activation (2 MB with int16 products)
  with a halo of 39 rows, what its three residual units (dilations 1, 3, 9, kernel 7) can see,
  so the residual stream stays in cache and the output is the same as decoding the whole chunk
  at once.
- Matrix products take the narrowest operands the CPU multiplies fastest
  (``shared.snac.products.Matrix``): bf16
  where it has AVX512-BF16 (oneDNN, ~2.5× fp32), 12-bit integers where it has AVX2 and no
  AVX-512 (``shared.snac.int16_gemm``, ~1.5× fp32 with the quantising), else fp32. The residual
  stream, Snake and the depthwise taps stay fp32; each product adds into its fp32 output.
- Snake, ``x + sin²(αx)/α``, is computed as ``u + sin²(u)`` with ``u = αx``; the ``1/α`` is
  folded into the next layer's weights, the ``α`` of the second Snake in a residual unit into the
  depthwise weights before it, and the pointwise biases are carried as a per-channel vector into
  the next Snake's first multiply-add.
- Snake, and Snake → depthwise conv → Snake, are each one fused loop (``shared.snac.snake_kernels``,
  compiled by Numba) instead of a dozen PyTorch passes over the tile.

The noise of each block comes from the chunk's :class:`~shared.snac.noise.KeyedNoise`, as the
plain decoder's does, so the output matches the plain decoder given the same seed, within the
products' rounding (SNR ≈ 45 dB in bf16, ≈ 60 dB in int16, exact to 2e-5 in fp32).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
from typing import Any

import torch
from torch import nn

from shared.snac import int16_gemm
from shared.snac import snake_kernels as kernels
from shared.snac.noise import KeyedNoise
from shared.snac.products import Matrix, Precision, check_runs_here, fastest_precision

RECEPTIVE_HALO = 3 * (1 + 3 + 9)  # rows a block's residual units read on each side
WEIGHTS_PER_TILE_BYTES = 1 << 21  # a transposed conv's taps beyond this: upsample the whole chunk
# fp32 activation elements per tile, by the products' precision: with fp32 or bf16 products
# 256 KB, so that the live ones stay in L2, ran fastest (the CLX, Zen 4); with int16 products,
# whose operands are half the bytes, 2 MB ran ≈ 10 % faster on Zen 3 than 256 KB: fewer
# 39-row halos computed twice, fewer calls (docs/performance.md)
TILE_ELEMENTS = {"bf16": 1 << 16, "fp32": 1 << 16, "int16": 1 << 19}


def keep_freed_memory() -> None:
    """Let glibc reuse freed memory instead of returning it to the kernel.

    Each chunk allocates hundreds of MB; fresh pages cost a page fault each (~5 µs in a VM),
    which was a third of the decode time. A no-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_max = -1, -4  # glibc's malloc.h
    mallopt(m_mmap_max, 0)  # large blocks from the heap too, so they can be reused
    mallopt(m_trim_threshold, 1 << 30)


def tiles(length: int, rows: int) -> list[tuple[int, int]]:
    """Split [0, length) into near-equal tiles of about ``rows`` (none shorter than a halo)."""
    count = max(1, round(length / rows))
    bounds = [length * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


class AlphaNotFoldable(ValueError):
    """A Snake alpha is 0, so 1/alpha cannot be folded into weights: use the plain path."""


def _alpha(snake: Any) -> torch.Tensor:
    alpha = snake.alpha.detach().reshape(-1).float()
    if (alpha.abs() < 1e-6).any():  # SNAC's alphas are learned from 1; never seen in practice
        raise AlphaNotFoldable(AlphaNotFoldable.__doc__)
    return alpha


def _divisor(alpha: torch.Tensor) -> torch.Tensor:
    """SNAC's Snake divides by ``α + 1e-9``; weights that take over that division use the same."""
    return alpha + 1e-9


def snake(x: torch.Tensor, alpha: torch.Tensor, pending: torch.Tensor, out: torch.Tensor):
    """``out = α·Snake(x + pending)``, i.e. ``u + sin²(u)`` with ``u = α(x + pending)``; fp32."""
    kernels.snake(x.numpy(), alpha.numpy(), (alpha * pending).numpy(), out.numpy())
    return out


class ResidualUnit:
    """Snake, depthwise conv (kernel 7, dilation d), Snake, 1×1 conv, plus the input."""

    def __init__(self, unit: Any, precision: Precision) -> None:
        snake1, depthwise, snake2, pointwise = unit.block
        alpha1, alpha2 = _alpha(snake1), _alpha(snake2)
        self.alpha = alpha1
        self.dilation = depthwise.dilation[0]
        taps = depthwise.weight.detach()[:, 0, :].T.float()  # (7, channels)
        self.taps = (taps / _divisor(alpha1) * alpha2).contiguous().numpy()
        self.taps_bias = (depthwise.bias.detach().float() * alpha2).numpy()
        weight = pointwise.weight.detach()[:, :, 0].T.float() / _divisor(alpha2)[:, None]
        self.pointwise = Matrix(weight, precision)
        self.bias = pointwise.bias.detach().float()

    def __call__(self, x, pending, start: int, end: int, length: int, out=None):
        """Rows [start, end) of the stream (its value is x + pending) → fewer rows, new pending.

        Rows within 3·dilation of a tile edge cannot be computed and are dropped; at the
        chunk's own edges the zero padding of the stock convolution applies instead. ``x`` is
        consumed: without ``out`` the result may be written over its rows.
        """
        rows, channels = x.shape
        reach = 3 * self.dilation
        left = reach if start == 0 else 0
        right = reach if end == length else 0
        padded = torch.empty(rows + left + right, channels)
        padded[:left] = 0
        padded[left + rows :] = 0
        snake(x, self.alpha, pending, out=padded[left : left + rows])
        kept = rows + left + right - 2 * reach
        activated = torch.empty(kept, channels)
        kernels.depthwise_snake(
            padded.numpy(), self.taps, self.taps_bias, self.dilation, activated.numpy()
        )
        skip = x[reach - left : reach - left + kept]
        # without ``out`` the sum goes into the caller's stream: it is not read again
        out = skip if out is None else out.copy_(skip)
        self.pointwise.accumulate(self.pointwise.operand(activated), out)
        return out, pending + self.bias, start + reach - left, end - reach + right


class UpsampleBlock:
    """SNAC's DecoderBlock: Snake, transposed conv (×stride), noise, three residual units."""

    def __init__(self, block: Any, precision: Precision) -> None:
        snake1, upsample, noise, *units = block.block
        self.alpha = _alpha(snake1)
        self.stride, self.crop = upsample.stride[0], upsample.padding[0]
        inputs, channels, kernel = upsample.weight.shape  # kernel == 2 * stride
        weight = upsample.weight.detach().float() / _divisor(self.alpha)[:, None, None]
        weight = weight.permute(0, 2, 1).reshape(inputs, kernel * channels)
        half = self.stride * channels
        self.first_taps = Matrix(weight[:, :half], precision)
        self.second_taps = Matrix(weight[:, half:], precision)
        self.upsample_bias = upsample.bias.detach().float().repeat(self.stride)
        self.noise = Matrix(noise.linear.weight.detach()[:, :, 0].T, precision)
        self.units = [ResidualUnit(unit, precision) for unit in units]
        self.units_bias = sum(unit.bias for unit in self.units)  # pending after the block
        self.channels, self.precision = channels, precision
        # Weights larger than a core's cache would be streamed from memory again for every
        # tile's few input frames: such blocks upsample the whole chunk in one product instead.
        self.upsample_whole = self.first_taps.nbytes > WEIGHTS_PER_TILE_BYTES

    def rows_per_tile(self) -> int:
        return max(1024, TILE_ELEMENTS[self.precision] // self.channels)

    def tile(
        self, x, pending, noise, start: int, end: int, halo: int = 0, out=None, upsampled=None
    ):
        """Output rows [start - halo, end + halo), clipped to the chunk → (rows, first row).

        The rows' value is the result plus ``self.units_bias``. ``upsampled`` is the whole
        chunk's transposed convolution, where the block computed it up front.
        """
        length = x.shape[0] * self.stride
        first = max(0, start - halo - RECEPTIVE_HALO)
        last = min(length, end + halo + RECEPTIVE_HALO)
        if upsampled is None:
            stream = self.upsample(x, pending, first, last)
        else:
            stream = upsampled[first:last]
        stream = self.noised(stream, noise[first:last])
        pending = torch.zeros(self.channels)
        for i, unit in enumerate(self.units):
            last_unit = i == len(self.units) - 1
            stream, pending, first, last = unit(
                stream, pending, first, last, length, out=out if last_unit else None
            )
        return stream, first

    def noised(self, stream: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """SNAC's NoiseBlock over rows of the upsampled stream, given their noise; a copy (tiles
        overlap: the rows may be another tile's too)."""
        hidden = self.noise.product(self.noise.operand(stream))
        return torch.addcmul(stream, hidden, noise[:, None])

    def upsample(self, x, pending, first: int, last: int, at: int = 0) -> torch.Tensor:
        """Rows [first, last) of the transposed convolution of ``Snake(x + pending)``, ``x``
        holding the input frames from frame ``at`` (a live stream's rows kept:
        ``shared.snac.stream``)."""
        stride, crop = self.stride, self.crop
        # output row r (before the crop: r + crop) takes input frames (r + crop) // stride and
        # the one before it
        frame0 = max(0, (first + crop) // stride - 1)
        frame1 = min(at + x.shape[0], (last - 1 + crop) // stride + 1)
        frames = frame1 - frame0
        inputs = x[frame0 - at : frame1 - at]
        activated = snake(inputs, self.alpha, pending, torch.empty(frames, x.shape[1]))
        activated = self.first_taps.operand(activated)  # both taps take the same operand
        full = self.upsample_bias.repeat(frames + 1, 1)
        self.first_taps.accumulate(activated, full[:frames])
        self.second_taps.accumulate(activated, full[1:])
        skip = first - (frame0 * stride - crop)
        return full.view(-1, self.channels)[skip : skip + last - first]

    def __call__(self, x, pending, noise):
        """The whole block, tile by tile: (frames, in) → (frames·stride, out), pending bias."""
        length = x.shape[0] * self.stride
        out = torch.empty(length, self.channels)
        upsampled = self.upsample(x, pending, 0, length) if self.upsample_whole else None
        for start, end in tiles(length, self.rows_per_tile()):
            self.tile(x, pending, noise, start, end, out=out[start:end], upsampled=upsampled)
        return out, self.units_bias


class TiledSnacDecoder:
    """SNAC 24 kHz decode on the CPU; ``decode(levels, keyed)`` → float32 PCM."""

    def __init__(self, model: Any, precision: Precision | None = None) -> None:
        keep_freed_memory()
        self.precision = precision or fastest_precision()
        check_runs_here(self.precision)
        if self.precision == "int16":
            int16_gemm.compile_now()
        kernels.compile_now()
        layers = model.decoder.model
        self.quantizer = model.quantizer
        self.entry = layers[:2]  # depthwise conv + 1×1 at the frame rate: cheap, stock
        self.blocks = [UpsampleBlock(block, self.precision) for block in layers[2:6]]
        self.final_alpha = _alpha(layers[6])
        conv = layers[7]  # Snake → Conv1d(channels, 1, 7, padding 3) → tanh
        taps = conv.weight.detach()[0].float() / _divisor(self.final_alpha)[:, None]  # (in, 7)
        self.final_taps = nn.functional.pad(taps, (0, 9))  # 16 columns: 4× faster than 7
        self.final_bias = float(conv.bias.detach()[0])

    @torch.inference_mode()
    def decode(self, levels: list[torch.Tensor], keyed: KeyedNoise) -> torch.Tensor:
        x = self.entry(self.quantizer.from_codes(levels))[0].T.contiguous()
        pending = torch.zeros(x.shape[1])
        noises, length = [], x.shape[0]
        for block in self.blocks:  # the stock decoder's blocks, in its order
            length *= block.stride
            noises.append(keyed.draw(length))
        for block, noise in zip(self.blocks[:-1], noises, strict=False):
            x, pending = block(x, pending, noise)
        return self.last_block_to_audio(x, pending, noises[-1])

    def last_block_to_audio(self, x, pending, noise) -> torch.Tensor:
        """The last block and the output conv per tile: its 64-channel output never exists whole."""
        block = self.blocks[-1]
        length = x.shape[0] * block.stride
        audio = torch.empty(length)
        for start, end in tiles(length, block.rows_per_tile()):
            stream, first = block.tile(x, pending, noise, start, end, halo=3)
            audio[start:end] = self.to_audio(stream, first, start, end)
        return audio

    def to_audio(self, rows: torch.Tensor, first: int, start: int, end: int) -> torch.Tensor:
        """Samples [start, end) from the last block's output (``rows`` from row ``first``, their
        value plus its ``units_bias``): rows [start - 3, end + 3), fewer only at the chunk's
        edges, where the output conv's zero padding applies."""
        lo, hi = max(first, start - 3), min(first + len(rows), end + 3)
        activated = torch.empty(hi - lo, rows.shape[1])
        snake(
            rows[lo - first : hi - first], self.final_alpha, self.blocks[-1].units_bias, activated
        )
        taps = activated @ self.final_taps  # (rows, 7): each row's share of 7 outputs
        taps = nn.functional.pad(taps[:, :7], (0, 0, 3 - (start - lo), 3 - (hi - end)))
        samples = torch.full((end - start,), self.final_bias)
        for k in range(7):
            samples += taps[k : k + end - start, k]
        return samples.tanh_()
