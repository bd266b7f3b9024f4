"""What a live listener is given of a chunk as its frames arrive, and when.

The decode itself, each row computed once as the whole-chunk decode computes it, is
``shared.snac.stream``'s, run in a decoding process (``shared.farm.hearing``) that holds its
state; this module is the listener's pace (torch-free: the api keeps it). A sample is final once
about 2.3 frames after it have arrived; the listener is given the samples up to
:data:`CONTEXT_FRAMES` frames before the last, the last third of a frame of them computed as
though the chunk ended there (within 85 dB of their final values with fp32 products:
tests/unit/test_live.py), so that the first sound comes after three frames (21 tokens).
Nothing is lost at the chunk's start or end. Unlike the reference streamer
(canopyai/Orpheus-TTS ``orpheus_tts_pypi/orpheus_tts/decoder.py``, a 28-token window every 7
tokens, its middle 2,048 samples kept) no frame is dropped, and each is decoded about once, not
four times.
"""

from __future__ import annotations

from shared.speech.codec import SAMPLES_PER_FRAME, SnacCodes

# Frames a listener is given before the last that has arrived. Their last ~0.3 frame is not
# final yet: it is computed as though the chunk ended there and given as it is, the final
# samples going on after it. One more frame would make every sample exact and the first sound
# come 7 tokens (85 ms of audio) later.
CONTEXT_FRAMES = 2


class Pace:
    """When a listener's decode steps (``StreamDecoder.step``) run, and what each is given.
    :meth:`feed` takes a chunk's frames in order and says whether a step is due now: the codes
    to send it and the samples it is to give up to; :meth:`finish`, once the chunk is over,
    the last step. The first audio comes once three frames have arrived, the next frames one
    by one while an encoder may still want more before its first packet (an MP3 frame and
    LAME's delay are ~1,700 samples), and after ``step_frames`` of them ``step_frames`` at a
    time, which bounds the steps and the samples each computes before they are final."""

    def __init__(self, step_frames: int = 4) -> None:
        self.step_frames = step_frames
        self.parts: list[SnacCodes] = []  # arrived, not yet sent
        self.frames = 0  # arrived
        self.heard = 0  # frames given out

    @property
    def wanted(self) -> int:
        """Frames still to arrive before the next step is due."""
        step = 1 if self.heard < self.step_frames else self.step_frames
        return max(0, step - (self.frames - CONTEXT_FRAMES - self.heard))

    def feed(self, codes: SnacCodes) -> tuple[SnacCodes, int] | None:
        if codes.frames:
            self.parts.append(codes)
            self.frames += codes.frames
        if self.wanted:
            return None
        self.heard = self.frames - CONTEXT_FRAMES
        return self._sent(), self.heard * SAMPLES_PER_FRAME

    def finish(self) -> tuple[SnacCodes, None] | None:
        if self.heard >= self.frames:
            return None
        self.heard = self.frames
        return self._sent(), None

    def _sent(self) -> SnacCodes:
        codes = SnacCodes.join(self.parts)
        self.parts = []
        return codes
