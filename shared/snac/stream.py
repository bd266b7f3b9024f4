"""A chunk decoded as its frames arrive, every row computed once: the live listener's decode.

SNAC's decoder is all convolutions and not causal: a sample depends on codes about 2.3 frames
on each side. Here it is a chain of stages, each a layer of the tiled decoder (the entry
convolutions; per block its transposed convolution with the noise, and its three residual
units; the output convolution), and each stage knows which of its input rows an output row
reads. A :class:`Stream` keeps, for every stage, the input rows it will still read and how
many output rows it has made. New frames add four rows a frame to the entry's input; each
stage then makes the rows whose whole reach is known, once, and hands them on. They are the
whole-chunk decode's rows: the same products over the same inputs, the noise keyed by
position (``shared.snac.noise``).

The last ~2.3 frames wait for codes not made yet, and a listener wants them sooner
(``shared.snac.pace``): past what is final, up to ``until``, each stage also makes the rows
those samples read as though the chunk ended at its last frame, from its final rows and the
stage before's rows of that kind, and hands them on without keeping them. Per step those are
about a third of a frame at every stage, computed again at the next.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import torch

from shared.snac.noise import block_noise
from shared.snac.tiled import ResidualUnit, TiledSnacDecoder, UpsampleBlock, tiles
from shared.speech.codec import SnacCodes

FRAMES_PER_RUN = 32  # codes taken in at a time: a listener far behind never holds a chunk's rows
NO_END = sys.maxsize  # a stage's input whose end is not known yet


@dataclass
class Rows:
    """A decoding stage's input rows still to be read, rows [at, end) of the chunk, and how
    many output rows it has made."""

    at: int = 0
    values: np.ndarray | None = None
    made: int = 0

    @property
    def end(self) -> int:
        return self.at + (0 if self.values is None else len(self.values))

    def get(self, start: int, end: int) -> np.ndarray:
        assert self.values is not None and self.at <= start <= end <= self.end
        return self.values[start - self.at : end - self.at]

    def add(self, rows: np.ndarray) -> None:
        if len(rows):
            self.values = rows if self.values is None else np.concatenate([self.values, rows])

    def followed_by(self, rows: np.ndarray) -> Rows:
        """These rows and ``rows`` after them, for one computation (not kept)."""
        return Rows(self.at, rows if self.values is None else np.concatenate([self.values, rows]))

    def keep_from(self, row: int) -> None:
        """Drop the rows before ``row`` (copying the rest: a view would keep them all)."""
        if self.values is not None and row > self.at:
            self.values = self.values[row - self.at :].copy()
            self.at = row


@dataclass
class Stream:
    """A chunk's decode so far: every stage's rows (≈ 330 KB with SNAC 24 kHz), and the samples
    given to the listener."""

    seed: int
    rows: list[Rows] = field(default_factory=list)
    given: int = 0  # samples given out


class _Conv:
    """A stage at one rate: output row r reads input rows [r - reach, r + reach]."""

    reach = 3  # kernel 7: the entry's depthwise convolution, the output convolution

    def ready(self, known: int, ended: bool) -> int:
        """Output rows that input rows [0, known) fix (all of them once the input has ended)."""
        return known if ended else known - self.reach

    def first_read(self, row: int) -> int:
        """The first input row that output rows from ``row`` on read."""
        return max(0, row - self.reach)

    def end_read(self, end: int) -> int:
        """Input rows [0, n) that output rows [0, end) read."""
        return end + self.reach


class _Entry(_Conv):
    def __init__(self, decoder: TiledSnacDecoder) -> None:
        self.convs = decoder.entry

    def make(self, rows: Rows, start: int, end: int, seed: int, ends: bool) -> np.ndarray:
        lo, hi = self.first_read(start), min(rows.end, self.end_read(end))
        made = self.convs(torch.from_numpy(rows.get(lo, hi)).T[None])[0].T
        # its zero padding past the slice's edges is past the chunk's where it reaches a row kept
        return made[start - lo : end - lo].contiguous().numpy()


class _Upsample:
    """A block's Snake, transposed convolution (output row r reads input frames
    (r + crop) // stride and the one before) and noise."""

    def __init__(self, decoder: TiledSnacDecoder, index: int) -> None:
        self.block: UpsampleBlock = decoder.blocks[index]
        self.index, self.stride, self.crop = index, self.block.stride, self.block.crop
        before = decoder.blocks[index - 1].units_bias if index else None
        self.pending = torch.zeros(decoder.entry[1].out_channels) if before is None else before

    def ready(self, known: int, ended: bool) -> int:
        return known * self.stride if ended else known * self.stride - self.crop

    def first_read(self, row: int) -> int:
        return max(0, (row + self.crop) // self.stride - 1)

    def end_read(self, end: int) -> int:
        return (end - 1 + self.crop) // self.stride + 1

    def make(self, rows: Rows, start: int, end: int, seed: int, ends: bool) -> np.ndarray:
        x = torch.from_numpy(rows.get(rows.at, rows.end))
        upsampled = self.block.upsample(x, self.pending, start, end, rows.at)
        noise = block_noise(seed, self.index, start, end - start)
        return self.block.noised(upsampled, noise).numpy()


class _Unit(_Conv):
    """A residual unit: output row r reads input rows [r - 3d, r + 3d] (dilation d)."""

    def __init__(self, unit: ResidualUnit, pending: torch.Tensor) -> None:
        self.unit, self.pending, self.reach = unit, pending, 3 * unit.dilation

    def make(self, rows: Rows, start: int, end: int, seed: int, ends: bool) -> np.ndarray:
        lo, hi = self.first_read(start), min(rows.end, self.end_read(end))
        x = torch.from_numpy(rows.get(lo, hi).copy())  # the unit adds into its input's rows
        made, _, first, _ = self.unit(x, self.pending, lo, hi, rows.end if ends else NO_END)
        return made[start - first : end - first].numpy()


class _Output(_Conv):
    def __init__(self, decoder: TiledSnacDecoder) -> None:
        self.decoder = decoder
        self.rows_per_tile = decoder.blocks[-1].rows_per_tile()

    def make(self, rows: Rows, start: int, end: int, seed: int, ends: bool) -> np.ndarray:
        values = torch.from_numpy(rows.get(rows.at, rows.end))
        audio = np.empty(end - start, np.float32)
        for lo, hi in tiles(end - start, self.rows_per_tile):
            audio[lo:hi] = self.decoder.to_audio(values, rows.at, start + lo, start + hi).numpy()
        return audio


Stage = _Entry | _Upsample | _Unit | _Output


def stages(decoder: TiledSnacDecoder) -> list[Stage]:
    """The tiled decoder's layers in the order its ``decode`` runs them."""
    chain: list[Stage] = [_Entry(decoder)]
    for index, block in enumerate(decoder.blocks):
        chain.append(_Upsample(decoder, index))
        pending = torch.zeros(block.channels)  # what the stream carries past the noise
        for unit in block.units:
            chain.append(_Unit(unit, pending))
            pending = pending + unit.bias
    return [*chain, _Output(decoder)]


class StreamDecoder:
    """A tiled decoder's stages, run over any number of :class:`Stream` s (which hold no model)."""

    def __init__(self, decoder: TiledSnacDecoder) -> None:
        self.quantizer = decoder.quantizer
        self.stages = stages(decoder)

    def begin(self, seed: int) -> Stream:
        """A chunk's stream, before its first frame."""
        return Stream(seed, [Rows() for _ in self.stages])

    @torch.inference_mode()
    def step(self, stream: Stream, codes: SnacCodes, until: int | None) -> np.ndarray:
        """Take in ``codes`` and give out the samples not given yet: the final ones and, past
        them up to ``until``, samples computed as though the chunk ended here; with ``until``
        None (the chunk is over), all the rest."""
        before = stream.rows[-1].made
        made: list[np.ndarray] = []
        ahead = np.zeros(0, np.float32)
        for first in range(0, max(codes.frames, 1), FRAMES_PER_RUN):
            part = codes.select(np.arange(first, min(first + FRAMES_PER_RUN, codes.frames)))
            stream.rows[0].add(self._latent(part))
            if first + FRAMES_PER_RUN < codes.frames:  # more to come in this step
                final, _ = self._run(stream, ended=False, want=None)
            else:
                final, ahead = self._run(stream, ended=until is None, want=until)
            made.append(final)
        samples = np.concatenate([*made, ahead])  # from sample ``before`` on
        out = samples[max(0, stream.given - before) :]
        stream.given = max(stream.given, before + len(samples))
        return out

    def _latent(self, codes: SnacCodes) -> np.ndarray:
        """The entry's input rows (four a frame): each frame's codes looked up on their own."""
        if codes.frames == 0:
            return np.zeros((0, self.quantizer.quantizers[0].out_proj.out_channels), np.float32)
        levels = [torch.from_numpy(level).unsqueeze(0) for level in codes.levels]
        return self.quantizer.from_codes(levels)[0].T.contiguous().numpy()

    def _run(self, stream: Stream, ended: bool, want: int | None):
        """Each stage makes the rows its input now fixes (all of them where it has ended) and
        keeps them; up to the rows the samples before ``want`` read, it also makes rows as though
        the chunk ended here, from those the stage before made so. Returns the samples made:
        final ones, and those."""
        bounds = self._bounds(want) if want is not None else [None] * len(self.stages)
        ahead = np.zeros(0, np.float32)  # the stage before's rows made past its final ones
        for i, (stage, rows, bound) in enumerate(
            zip(self.stages, stream.rows, bounds, strict=True)
        ):
            final = max(rows.made, stage.ready(rows.end, ended))
            source = rows.followed_by(ahead) if len(ahead) else rows
            end = final if bound is None else max(final, min(stage.ready(source.end, True), bound))
            made = np.zeros(0, np.float32)
            if end > rows.made:
                made = stage.make(source, rows.made, end, stream.seed, ended or bound is not None)
            cut = final - rows.made
            if i + 1 < len(stream.rows):
                stream.rows[i + 1].add(made[:cut])
            rows.made = final
            rows.keep_from(stage.first_read(final))
            final_made, ahead = made[:cut], made[cut:]
        return final_made, ahead

    def _bounds(self, want: int) -> list[int | None]:
        """From the samples back: the rows each stage's output must reach for ``want``."""
        bound, bounds = want, [want]
        for stage in reversed(self.stages[1:]):
            bound = stage.end_read(bound)
            bounds.append(bound)
        return list(reversed(bounds))
