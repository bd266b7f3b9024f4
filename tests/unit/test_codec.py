from __future__ import annotations

import numpy as np
import pytest

from shared.speech.codec import (
    AUDIO_BASE,
    BOS,
    END_OF_SPEECH,
    END_OF_TEXT,
    START_OF_SPEECH,
    audio_token,
    build_prompt_ids,
    codes_from_frames,
    parse_tokens,
)


class ByteTokenizer:
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert add_special_tokens is False
        return list(text.encode())


def frame(*codes: int) -> list[int]:
    return [audio_token(slot, code) for slot, code in enumerate(codes)]


def test_prompt_layout():
    ids = build_prompt_ids(ByteTokenizer(), "tara", "Hi")
    assert ids == [128259, BOS, *b"tara: Hi", END_OF_TEXT, 128260, 128261, START_OF_SPEECH]


def test_frame_positions_follow_the_snac_layout():
    codes = parse_tokens(frame(1, 2, 3, 4, 5, 6, 7) + frame(8, 9, 10, 11, 12, 13, 14))
    l0, l1, l2 = codes.levels
    assert l0.tolist() == [1, 8]
    assert l1.tolist() == [2, 5, 9, 12]
    assert l2.tolist() == [3, 4, 6, 7, 10, 11, 13, 14]
    assert (codes.frames, codes.samples, codes.dropped_tokens, codes.partial_frames) == (
        2,
        4096,
        0,
        0,
    )


def test_round_trip_through_tokens():
    rng = np.random.default_rng(1)
    codes = codes_from_frames(rng.integers(0, 4096, size=(9, 7)).tolist())
    again = parse_tokens(codes.to_tokens())
    for a, b in zip(codes.levels, again.levels, strict=True):
        assert np.array_equal(a, b)


def test_code_zero_is_kept_and_4095_is_the_last_valid_code():
    codes = parse_tokens(frame(0, 0, 0, 0, 0, 0, 0) + frame(4095, 0, 4095, 0, 4095, 0, 4095))
    assert codes.frames == 2 and codes.dropped_tokens == 0
    assert codes.levels[0].tolist() == [0, 4095]


def test_code_4096_for_its_position_is_rejected_and_parsing_resynchronises():
    bad = frame(1, 2, 3)
    bad.append(AUDIO_BASE + 3 * 4096 + 4096)  # code 4096 at slot 3 (reads as slot 4)
    tokens = bad + frame(5, 6, 7, 8, 9, 10, 11)
    codes = parse_tokens(tokens)
    assert codes.frames == 1
    assert codes.levels[0].tolist() == [5]
    assert codes.partial_frames == 1 and codes.dropped_tokens == 4


def test_a_text_token_inside_speech_drops_only_its_frame():
    tokens = frame(1, 1, 1, 1, 1, 1, 1) + frame(2, 2)[:2] + [500] + frame(3, 3, 3, 3, 3, 3, 3)
    codes = parse_tokens(tokens)
    assert codes.levels[0].tolist() == [1, 3]
    assert (codes.partial_frames, codes.dropped_tokens) == (1, 3)


def test_a_lost_token_resynchronises_on_the_next_frame_start():
    second = frame(2, 2, 2, 2, 2, 2, 2)
    del second[3]  # slot 3 went missing: slots 4..6 now sit one position early
    codes = parse_tokens(frame(1, 1, 1, 1, 1, 1, 1) + second + frame(3, 3, 3, 3, 3, 3, 3))
    assert codes.levels[0].tolist() == [1, 3]
    assert codes.partial_frames == 1 and codes.dropped_tokens == 6


def test_trailing_partial_frame_and_tokens_after_end_of_speech_are_dropped():
    tokens = [START_OF_SPEECH, *frame(1, 1, 1, 1, 1, 1, 1), *frame(2, 2, 2)]
    codes = parse_tokens(tokens)
    assert codes.frames == 1 and codes.partial_frames == 1 and codes.dropped_tokens == 3
    stopped = parse_tokens(
        [*frame(1, 1, 1, 1, 1, 1, 1), END_OF_SPEECH, *frame(2, 2, 2, 2, 2, 2, 2)]
    )
    assert stopped.frames == 1 and stopped.dropped_tokens == 0


@pytest.mark.parametrize("tokens", [[], [END_OF_SPEECH], [128009, 128260]])
def test_no_audio_gives_no_frames(tokens):
    codes = parse_tokens(tokens)
    assert codes.frames == 0 and codes.samples == 0
    assert all(level.shape == (0,) for level in codes.levels)
