"""An engine that costs nothing: a few milliseconds of silence per chunk, instantly.

For load-testing a deployment's plumbing (queues, database, object store, stitch) without a
model: ``LYRE_ENGINE=null``. Never chosen by ``auto``.
"""

from __future__ import annotations

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.speech.engine import Engine, Speech, SpeechRequest
from shared.text.voices import VOICES


class NullEngine(Engine):
    name = "null"
    voices = VOICES

    async def generate(self, request: SpeechRequest) -> Speech:
        return Speech(pcm=np.zeros(SAMPLE_RATE // 100, np.float32))
