"""The Orpheus token layout: prompts as token ids, generated ids back to SNAC codes.

See docs/orpheus.md. Seven tokens make one coarse frame; the token at position ``p`` (counted from
the first audio token) carries ``code = id - AUDIO_BASE - 4096 * (p % 7)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

BOS = 128000
END_OF_TEXT = 128009
START_OF_SPEECH = 128257
END_OF_SPEECH = 128258
START_OF_HUMAN = 128259
END_OF_HUMAN = 128260
START_OF_AI = 128261
END_OF_AI = 128262
PAD = 128263
AUDIO_BASE = 128266
CODEBOOK_SIZE = 4096
FRAME_TOKENS = 7
AUDIO_END = AUDIO_BASE + FRAME_TOKENS * CODEBOOK_SIZE  # first id past the audio range
VOCAB_SIZE = 156940
SAMPLES_PER_FRAME = 2048

# Where each of a frame's seven tokens goes: (level, offset within the frame's codes).
# Per frame i: L0[i], L1[2i], L2[4i], L2[4i+1], L1[2i+1], L2[4i+2], L2[4i+3].
_SLOTS = ((0, 0), (1, 0), (2, 0), (2, 1), (1, 1), (2, 2), (2, 3))
_LEVEL_WIDTH = (1, 2, 4)


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...


def build_prompt_ids(tokenizer: Tokenizer, voice: str, text: str) -> list[int]:
    """Return the prompt the fine-tuned model was trained on, as token ids."""
    body = tokenizer.encode(f"{voice}: {text}", add_special_tokens=False)
    return [START_OF_HUMAN, BOS, *body, END_OF_TEXT, END_OF_HUMAN, START_OF_AI, START_OF_SPEECH]


def audio_token(slot: int, code: int) -> int:
    """Return the token id that carries ``code`` at a position with ``p % 7 == slot``."""
    return AUDIO_BASE + slot * CODEBOOK_SIZE + code


@dataclass(frozen=True)
class SnacCodes:
    """One chunk's codes for the three SNAC levels: F, 2F and 4F codes for F frames."""

    levels: tuple[np.ndarray, np.ndarray, np.ndarray]
    dropped_tokens: int = 0  # tokens that were not a valid audio token for their position
    partial_frames: int = 0  # frames abandoned because a token in them was invalid or missing

    @property
    def frames(self) -> int:
        return len(self.levels[0])

    @property
    def samples(self) -> int:
        return self.frames * SAMPLES_PER_FRAME

    def select(self, frames: np.ndarray) -> SnacCodes:
        """These codes' frames at the indices ``frames``, in that order (repeats allowed)."""
        levels = tuple(
            level.reshape(self.frames, width)[frames].reshape(-1)
            for level, width in zip(self.levels, _LEVEL_WIDTH, strict=True)
        )
        return SnacCodes(levels)  # type: ignore[arg-type]

    @classmethod
    def join(cls, parts: Sequence[SnacCodes]) -> SnacCodes:
        """The frames of ``parts``, one after the other (their counts of dropped tokens and
        partial frames added)."""
        if not parts:
            return codes_from_frames([])
        levels = tuple(np.concatenate([p.levels[i] for p in parts]) for i in range(3))
        dropped = sum(p.dropped_tokens for p in parts)
        return cls(levels, dropped, sum(p.partial_frames for p in parts))  # type: ignore[arg-type]

    def to_tokens(self) -> list[int]:
        """Return the audio tokens that encode these codes (the inverse of parse_tokens)."""
        out: list[int] = []
        for i in range(self.frames):
            for slot, (level, offset) in enumerate(_SLOTS):
                out.append(
                    audio_token(slot, int(self.levels[level][_LEVEL_WIDTH[level] * i + offset]))
                )
        return out


def _speech_part(ids: Sequence[int]) -> Sequence[int]:
    """Cut to what follows the last start-of-speech and precedes the first end-of-speech."""
    ids = list(ids)
    if START_OF_SPEECH in ids:
        ids = ids[len(ids) - ids[::-1].index(START_OF_SPEECH) :]
    if END_OF_SPEECH in ids:
        ids = ids[: ids.index(END_OF_SPEECH)]
    return ids


def parse_tokens(ids: Sequence[int]) -> SnacCodes:
    """Turn generated ids into SNAC codes.

    Unlike the reference parser this keeps code 0 and rejects codes of 4096 and more. After a
    bad token it resynchronises on position: every audio id names the slot it was made for,
    so the partial frame is dropped and parsing resumes at the next slot-0 token.
    """
    parser = FrameParser()
    frames = parser.feed(_speech_part(ids))
    parser.close()
    return codes_from_frames(frames, parser.dropped, parser.partial)


class FrameParser:
    """:func:`parse_tokens` as the ids arrive (a chunk streamed live): :meth:`feed` gives the
    frames each batch of ids completes; the ids are those after the prompt, and end-of-speech
    ends the frames."""

    def __init__(self) -> None:
        self.frame: list[int] = []
        self.dropped = self.partial = 0
        self.ended = False

    def feed(self, ids: Sequence[int]) -> list[list[int]]:
        frames: list[list[int]] = []
        for token in ids:
            if self.ended or token == END_OF_SPEECH:
                self.ended = True
                break
            self._take(token, frames)
        return frames

    def _take(self, token: int, frames: list[list[int]]) -> None:
        slot, code = divmod(token - AUDIO_BASE, CODEBOOK_SIZE)
        valid = AUDIO_BASE <= token < AUDIO_END
        if valid and slot == len(self.frame):
            self.frame.append(code)
            if len(self.frame) == FRAME_TOKENS:
                frames.append(self.frame)
                self.frame = []
            return
        if self.frame:  # the frame in progress can never be completed
            self.close()
        if valid and slot == 0:
            self.frame.append(code)
        else:
            self.dropped += 1

    def close(self) -> None:
        """Abandon the frame in progress, if any (the ids are over)."""
        if self.frame:
            self.partial += 1
            self.dropped += len(self.frame)
            self.frame = []


def codes_from_frames(frames: list[list[int]], dropped: int = 0, partial: int = 0) -> SnacCodes:
    table = np.asarray(frames, dtype=np.int64).reshape(-1, FRAME_TOKENS)
    levels = tuple(
        table[:, [slot for slot, (lvl, _) in enumerate(_SLOTS) if lvl == level]].reshape(-1)
        for level in range(3)
    )
    return SnacCodes(levels, dropped, partial)  # type: ignore[arg-type]
