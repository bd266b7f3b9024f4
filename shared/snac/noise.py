"""SNAC's noise, keyed by position: the same sample of a chunk gets the same noise however the
chunk is cut for decoding.

SNAC's decoder blocks each add ``noise · linear(x)`` with ``torch.randn`` over their whole
output. Drawn from one generator in order, a sample's noise depends on the length of
everything drawn before it, so a chunk decoded piece by piece as its frames arrive (the live
stream, ``shared.snac.stream``) would hear other noise than the chunk decoded whole. Here the
noise of block ``b`` is cut into pages of :data:`PAGE` samples, each page drawn from a generator
seeded by (chunk seed, block, page): any stretch of any block is the same values wherever it is
decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import torch

PAGE = 4096  # noise values per generator: ~20 µs a page, ≈ 4 ms for a 27 s chunk's four blocks
_MASK = (1 << 63) - 1  # torch seeds are taken modulo 2^64; stay positive


def _mix(value: int) -> int:
    """splitmix64's finaliser: neighbouring pages get unrelated seeds."""
    value = (value + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (value ^ (value >> 31)) & _MASK


def page_seed(seed: int, block: int, page: int) -> int:
    return _mix(_mix(_mix(seed & 0xFFFFFFFFFFFFFFFF) ^ block) ^ page)


def block_noise(seed: int, block: int, start: int, length: int) -> torch.Tensor:
    """Standard normal noise for samples ``[start, start + length)`` of decoder block
    ``block``'s output, float32."""
    out = torch.empty(length)
    generator = torch.Generator()
    for page in range(start // PAGE, -(-(start + length) // PAGE)):  # the pages it overlaps
        generator.manual_seed(page_seed(seed, block, page))
        values = torch.randn(PAGE, generator=generator)
        lo, hi = max(start, page * PAGE), min(start + length, (page + 1) * PAGE)
        out[lo - start : hi - start] = values[lo - page * PAGE : hi - page * PAGE]
    return out


class KeyedNoise:
    """The noise of one chunk's decode, block by block: each call gives the next block's noise,
    ``length`` samples (the blocks are called in order, as the decoder runs them)."""

    def __init__(self, seed: int) -> None:
        self.seed, self.block = seed, 0

    def draw(self, length: int) -> torch.Tensor:
        noise = block_noise(self.seed, self.block, 0, length)
        self.block += 1
        return noise


@contextmanager
def stock_noise(seed: int) -> Iterator[None]:
    """SNAC's own decoder (its ``NoiseBlock`` calling ``torch.randn`` once per block, in order)
    drawing the chunk's keyed noise, as Lyre's decoders do: for comparing their arithmetic with
    the stock decode's (tests, ``bench/decode.py``), not two draws of noise."""
    keyed, draw = KeyedNoise(seed), torch.randn

    def randn(size, **kwargs):  # type: ignore[no-untyped-def]
        if "generator" in kwargs:  # the keyed noise's own draws
            return draw(size, **kwargs)
        return keyed.draw(size[-1]).reshape(size)

    with mock.patch("snac.layers.torch.randn", randn):
        yield
