"""Position-constrained sampling: the rule both Orpheus backends apply to their logits.

At generated position ``p`` only the 4096 audio ids of slot ``p % 7`` may be drawn, and end of
speech only where a frame begins (slot 0). Even an untrained model then yields well-formed
frames, and a trained one cannot drift out of the codec's layout. The transformers backend
applies it per step (:class:`shared.speech.transformers_backend.AudioPositionMask`); vLLM
through its logits-processor interface (:mod:`shared.speech.vllm_logits`).
"""

from __future__ import annotations

import torch

from shared.speech.codec import AUDIO_BASE, AUDIO_END, CODEBOOK_SIZE, END_OF_SPEECH, FRAME_TOKENS

_NO_SLOT = -1  # ids outside the audio range (text, special tokens): never allowed


def id_slots(vocab_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """For each id of the vocabulary, the slot at which it may be drawn (``-1``: never).

    End of speech counts as a slot-0 id: it may stand only where a new frame would start.
    """
    slots = torch.full((vocab_size,), _NO_SLOT, dtype=torch.int32)
    audio = torch.arange(AUDIO_BASE, min(AUDIO_END, vocab_size))
    slots[audio] = ((audio - AUDIO_BASE) // CODEBOOK_SIZE).to(torch.int32)
    slots[END_OF_SPEECH] = 0
    return slots.to(device)


def frame_slots(generated: torch.Tensor) -> torch.Tensor:
    """The slot of each position, from its index among the generated tokens."""
    return torch.remainder(generated, FRAME_TOKENS)


def mask_logits(
    logits: torch.Tensor,
    slots: torch.Tensor,
    allowed_slots: torch.Tensor,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """Set to ``-inf``, in place, every id not allowed at its row's slot.

    ``logits`` is ``[rows, vocab]``; ``slots`` the slot of each row's next token;
    ``allowed_slots`` the table from :func:`id_slots`; ``rows`` (bool) limits the mask to the
    rows it marks. One comparison over the batch, no per-row Python.
    """
    forbidden = allowed_slots.unsqueeze(0) != slots.to(allowed_slots.dtype).unsqueeze(1)
    if rows is not None:
        forbidden &= rows.unsqueeze(1)
    return logits.masked_fill_(forbidden, float("-inf"))
