"""espeak-ng through its C library, shipped inside the ``espeakng-loader`` wheel.

No system package is needed. The library keeps global state, so calls are serialised.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import threading
from functools import lru_cache

import numpy as np
from scipy.signal import resample_poly

from shared.audio import SAMPLE_RATE
from shared.speech.engine import Engine, EngineError, Speech, SpeechRequest
from shared.text.voices import VOICES

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_TAG = re.compile(r"<[A-Za-z_]+>")

# Orpheus voice names mapped to espeak-ng variants, so that scripts work on either engine.
ESPEAK_VOICES = {
    "tara": "en-us+f3",
    "leah": "en-us+f2",
    "jess": "en-us+f4",
    "mia": "en-us+f1",
    "zoe": "en-us+f5",
    "leo": "en-us+m3",
    "dan": "en-us+m1",
    "zac": "en-us+m2",
}
assert set(ESPEAK_VOICES) == set(VOICES)


class _Library:
    """The loaded libespeak-ng, initialised once per process."""

    def __init__(self) -> None:
        import espeakng_loader

        try:
            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        except OSError as exc:
            raise EngineError(f"cannot load libespeak-ng: {exc}") from exc
        data = espeakng_loader.get_data_path().encode()
        rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise EngineError("espeak-ng failed to initialise")
        self.sample_rate = rate
        self.lock = threading.Lock()
        self._samples: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: C holds the pointer
        self.lib.espeak_SetSynthCallback(self._callback)
        self.lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]

    def _collect(self, wav, count, _events) -> int:
        if count > 0:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, words_per_minute: int) -> np.ndarray:
        with self.lock:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EngineError(f"espeak-ng has no voice {voice!r}")
            self.lib.espeak_SetParameter(_RATE, words_per_minute, 0)
            self._samples = []
            data = text.encode() + b"\0"
            status = self.lib.espeak_Synth(
                data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if status != 0:
                raise EngineError(f"espeak-ng synthesis failed with status {status}")
            self.lib.espeak_Synchronize()
            samples, self._samples = self._samples, []
        pcm = np.concatenate(samples) if samples else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0


@lru_cache(maxsize=1)
def _library() -> _Library:
    return _Library()


class EspeakEngine(Engine):
    """A formant synthesiser: robotic, but runs anywhere with no weights."""

    name = "espeak"
    voices = VOICES

    def __init__(self, words_per_minute: int = 165) -> None:
        self.words_per_minute = words_per_minute
        self._lib = _library()

    def synthesize(self, request: SpeechRequest) -> Speech:
        text = " ".join(_TAG.sub(" ", request.text).split())
        pcm = self._lib.synthesize(text, ESPEAK_VOICES[request.voice], self.words_per_minute)
        rate = self._lib.sample_rate
        if rate != SAMPLE_RATE:
            pcm = resample_poly(pcm, SAMPLE_RATE, rate).astype(np.float32)
        return Speech(pcm=pcm)

    async def generate(self, request: SpeechRequest) -> Speech:
        return await asyncio.to_thread(self.synthesize, request)
