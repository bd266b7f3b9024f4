"""The frame rule spelled out from the token layout, as the tests' oracle: both the
transformers mask (tests/unit) and vLLM's processor (tests/vllm) are checked against it, not
against frame_mask's own table. Imports nothing but the codec, so both environments can."""

from __future__ import annotations

from shared.speech.codec import END_OF_SPEECH, audio_token


def expected_ids(generated: int) -> list[int]:
    """The ids allowed for the token with this index among the generated ones: slot
    ``generated % 7``'s 4096 audio ids, and end of speech where a frame starts."""
    slot = generated % 7
    audio = list(range(audio_token(slot, 0), audio_token(slot, 4095) + 1))
    return ([END_OF_SPEECH] if slot == 0 else []) + audio
