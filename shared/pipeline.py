"""Stage functions shared by the embedded runner and the farm's tasks."""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np

from shared.audio import ChunkStats, finish_chunk
from shared.engines.base import Engine, EngineLoop, Speech, SpeechRequest
from shared.settings import AudioSettings

if TYPE_CHECKING:  # importing the decoder imports torch
    from shared.decoder import SnacDecoder


class MissingDecoder(Exception):
    """The engine produced SNAC codes but no SNAC decoder was loaded."""


def chunk_seed(job_id: str, index: int) -> int:
    """A stable seed per chunk, so that a retried chunk samples and decodes the same way."""
    return zlib.crc32(f"{job_id}:{index}".encode())


def generate_speech(loop: EngineLoop, engine: Engine, request: SpeechRequest) -> Speech:
    """Run one chunk through the engine on its event loop (callable from any thread)."""
    return loop.run(engine.generate(request))


def render_speech(
    speech: Speech, decoder: SnacDecoder | None, seed: int, settings: AudioSettings
) -> tuple[np.ndarray, ChunkStats]:
    """Decode codes (or take the engine's PCM), then trim, fade and measure."""
    if speech.codes is not None:
        if decoder is None:
            raise MissingDecoder(MissingDecoder.__doc__)
        pcm = decoder.decode(speech.codes, seed)
    else:
        pcm = speech.pcm if speech.pcm is not None else np.zeros(0, np.float32)
    return finish_chunk(pcm, settings)
