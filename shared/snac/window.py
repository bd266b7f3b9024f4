"""A chunk decoded as its frames arrive, for someone listening while the engine still works.

SNAC's decoder is all convolutions and not causal: a sample depends on codes about 2.3 frames on
each side. Each step decodes the frames not yet heard with :data:`CONTEXT_FRAMES` frames of
context on each side and keeps only their own samples, so that, with the noise keyed by
position (``shared.snac.noise``), the joined audio is the chunk decoded whole: nothing
lost at its start (no left context there, as in the whole decode) or its end (decoded with no
right context once the engine says the chunk is over). Unlike the reference streamer
(canopyai/Orpheus-TTS ``orpheus_tts_pypi/orpheus_tts/decoder.py``, a 28-token window every 7
tokens, its middle 2,048 samples kept) no frame is dropped and each is decoded about 2.5 times,
not 4.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from shared.speech.codec import SAMPLES_PER_FRAME, SnacCodes

# SnacDecoder.decode, or a call of it in another process: (codes, seed, first frame) -> PCM
Decode = Callable[[SnacCodes, int, int], np.ndarray]

# Frames of context each side: a code reaches about 2.3 frames (the entry's depthwise conv ±0.75
# frame, the first block's residual units ±1.2, the later blocks' less). Three leave the kept
# samples as the whole decode makes them (to 1e-6 on the plain path); two leave them within
# 85 dB of it (58 dB on the tiled path, whose narrow products round by the window anyway:
# tests/unit/test_live.py), and the first sound comes a frame (7 tokens, 85 ms of audio) sooner.
CONTEXT_FRAMES = 2


class WindowDecoder:
    """Feed a chunk's frames in order; each :meth:`feed` gives the PCM that is now final (maybe
    none), :meth:`finish` the rest once the chunk is over. The first audio comes as soon as one
    frame has its right context (3 frames, 21 tokens), and the next frames one by one while
    an encoder may still want more before its first packet (an MP3 frame and LAME's delay are
    ~1,700 samples); after ``step_frames`` of them, ``step_frames`` at a time, which bounds the
    decoding each frame costs ((step + 2 × context) / step)."""

    def __init__(self, decode: Decode, seed: int, step_frames: int = 4) -> None:
        self.decode, self.seed, self.step = decode, seed, step_frames
        self.parts: list[SnacCodes] = []
        self.frames = 0  # received
        self.heard = 0  # decoded and given out

    def feed(self, codes: SnacCodes) -> np.ndarray:
        if codes.frames:
            self.parts.append(codes)
            self.frames += codes.frames
        final = self.frames - CONTEXT_FRAMES
        if final - self.heard < (1 if self.heard < self.step else self.step):
            return np.zeros(0, np.float32)
        return self._decode(final)

    def finish(self) -> np.ndarray:
        if self.heard >= self.frames:
            return np.zeros(0, np.float32)
        return self._decode(self.frames)

    def _decode(self, until: int) -> np.ndarray:
        """The samples of frames ``[heard, until)``, decoded with the context there is."""
        codes = SnacCodes.join(self.parts)
        self.parts = [codes]
        start = max(0, self.heard - CONTEXT_FRAMES)
        window = codes.select(np.arange(start, self.frames))
        pcm = self.decode(window, self.seed, start)
        first = (self.heard - start) * SAMPLES_PER_FRAME
        out = pcm[first : first + (until - self.heard) * SAMPLES_PER_FRAME]
        self.heard = until
        return out
