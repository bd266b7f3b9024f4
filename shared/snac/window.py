"""What a live listener is given of a chunk as its frames arrive, and when.

The decode itself, each sample computed once and kept as the whole-chunk decode makes it, is
``shared.snac.stream``'s, run in a decoding process (``shared.farm.hearing``); this module holds
its state, which travels between the api and that process with each step, and the listener's
pace. A sample is final once about 2.3 frames after it have arrived; the listener is given the
samples up to :data:`CONTEXT_FRAMES` frames before the last, the last fraction of them computed
as though the chunk ended there (within 85 dB of their final values with the stock products:
tests/unit/test_live.py), so that the first sound comes after three frames (21 tokens). Nothing
is lost at the chunk's start or end. Unlike the reference streamer (canopyai/Orpheus-TTS
``orpheus_tts_pypi/orpheus_tts/decoder.py``, a 28-token window every 7 tokens, its middle 2,048
samples kept) no frame is dropped, and each is decoded about once, not four times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from shared.speech.codec import SAMPLES_PER_FRAME, SnacCodes

# Frames a listener is given before the last that has arrived. Their last ~0.3 frame is not
# final yet: computed as though the chunk ended there, and replaced by nothing (the final
# values follow from there on). One more frame would make every sample exact and the first
# sound come 7 tokens (85 ms of audio) later.
CONTEXT_FRAMES = 2


@dataclass
class Rows:
    """A decoding stage's input rows still to be read: rows [at, end) of the chunk; and how
    many output rows it has made. Arrays are replaced, never written into, so that a copy of
    a stream's rows (a look ahead) leaves the stream as it was."""

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
        """Drop the rows before ``row`` (copying the rest: a view would travel with them)."""
        if self.values is not None and row > self.at:
            self.values = self.values[row - self.at :].copy()
            self.at = row


@dataclass
class Stream:
    """A chunk's decode so far: every stage's rows, and the samples given to the listener."""

    seed: int
    rows: list[Rows] = field(default_factory=list)
    frames: int = 0  # taken in
    given: int = 0  # samples given out


# StreamDecoder.step in a decoding process: (stream, new codes, until) -> (samples, stream)
Step = Callable[[Stream | None, int, SnacCodes, int | None], tuple[np.ndarray, Stream]]


class WindowDecoder:
    """Feed a chunk's frames in order; each :meth:`feed` gives the PCM that the listener may
    have now (maybe none), :meth:`finish` the rest once the chunk is over. The first audio comes
    once three frames have arrived, the next frames one by one while an encoder may still want
    more before its first packet (an MP3 frame and LAME's delay are ~1,700 samples), and after
    ``step_frames`` of them ``step_frames`` at a time, which bounds the calls and the rows
    each computes twice."""

    def __init__(self, step: Step, seed: int, step_frames: int = 4) -> None:
        self.step, self.seed, self.step_frames = step, seed, step_frames
        self.stream: Stream | None = None  # made where it is decoded, on the first step
        self.parts: list[SnacCodes] = []  # arrived, not yet sent
        self.frames = 0  # arrived
        self.heard = 0  # frames given out

    def feed(self, codes: SnacCodes) -> np.ndarray:
        if codes.frames:
            self.parts.append(codes)
            self.frames += codes.frames
        final = self.frames - CONTEXT_FRAMES
        if final - self.heard < (1 if self.heard < self.step_frames else self.step_frames):
            return np.zeros(0, np.float32)
        self.heard = final
        return self._step(final * SAMPLES_PER_FRAME)

    def finish(self) -> np.ndarray:
        if self.heard >= self.frames:
            return np.zeros(0, np.float32)
        self.heard = self.frames
        return self._step(None)

    def _step(self, until: int | None) -> np.ndarray:
        codes = SnacCodes.join(self.parts)
        self.parts = []
        pcm, self.stream = self.step(self.stream, self.seed, codes, until)
        return pcm
