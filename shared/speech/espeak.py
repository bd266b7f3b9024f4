"""espeak-ng through its C library, shipped inside the ``espeakng-loader`` wheel.

No system package is needed. The library keeps global state, so calls are serialised; and it
carries state from one utterance to the next in static variables that no call resets (in
1.52's ``wavegen.c``: the flutter table's position, the wave's phase, the breath resonators),
so the same text said twice differs a few milliseconds in, and differs again with whatever
was said in between. Each synthesis therefore loads the library afresh (about a millisecond),
from its initial state. Its noise (the breath of the ``f2``, ``f3`` and ``f5`` variants,
``klatt.c``'s aspiration) comes from its own generator, which ``espeak_Initialize`` seeds with
the time; the request's seed replaces it, and seeds libc's ``rand`` too, the source of the
``klatt 6`` voices (``speechPlayer``). Same text, voice and seed: the same samples.
"""

from __future__ import annotations

import _ctypes
import asyncio
import ctypes
import os
import re
import threading
from functools import lru_cache
from typing import Any

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
_SYNTH_ARGUMENTS: list[Any] = [
    ctypes.c_char_p,
    ctypes.c_size_t,
    ctypes.c_uint,
    ctypes.c_int,
    ctypes.c_uint,
    ctypes.c_uint,
    ctypes.c_void_p,
    ctypes.c_void_p,
]
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


class LibraryShared(EngineError):
    """libespeak-ng stays loaded when closed (something else in this process holds it), so
    its state would carry from one utterance to the next: espeak could not repeat itself."""


class _Library:
    """libespeak-ng, loaded for one synthesis at a time (see the module's docstring)."""

    def __init__(self) -> None:
        import espeakng_loader

        self.path = espeakng_loader.get_library_path()
        self.data = espeakng_loader.get_data_path().encode()
        self.lock = threading.Lock()
        self._samples: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: C holds the pointer
        # the process's global symbols: the library's ``rand`` is libc's (rand@GLIBC_2.2.5),
        # the one generator this ``srand`` seeds
        self._srand = ctypes.CDLL(None).srand
        self._srand.argtypes = [ctypes.c_uint]
        with self.lock:
            lib, self.sample_rate = self._open()
            self._close(lib)
            if not self._unloaded():
                raise LibraryShared(LibraryShared.__doc__)

    def _open(self) -> tuple[ctypes.CDLL, int]:
        """Load the library afresh and initialise it."""
        try:
            lib = ctypes.CDLL(self.path)
        except OSError as exc:
            raise EngineError(f"cannot load libespeak-ng: {exc}") from exc
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data, 0)
        if rate <= 0:
            _ctypes.dlclose(lib._handle)
            raise EngineError("espeak-ng failed to initialise")
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_Synth.argtypes = _SYNTH_ARGUMENTS
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        return lib, rate

    @staticmethod
    def _close(lib: ctypes.CDLL) -> None:
        lib.espeak_Terminate()
        _ctypes.dlclose(lib._handle)  # the last reference: unloaded, its statics with it

    def _unloaded(self) -> bool:
        """Whether the library left the process when closed (no one else holds it)."""
        try:
            held = ctypes.CDLL(self.path, mode=os.RTLD_NOLOAD)
        except OSError:
            return True
        _ctypes.dlclose(held._handle)
        return False

    def _collect(self, wav, count, _events) -> int:
        if count > 0:
            self._samples.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, words_per_minute: int, seed: int) -> np.ndarray:
        with self.lock:
            lib, _ = self._open()
            try:
                samples = self._say(lib, text, voice, words_per_minute, seed)
            finally:
                self._close(lib)
        pcm = np.concatenate(samples) if samples else np.zeros(0, np.int16)
        return pcm.astype(np.float32) / 32768.0

    def _say(
        self, lib: ctypes.CDLL, text: str, voice: str, words_per_minute: int, seed: int
    ) -> list[np.ndarray]:
        if lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise EngineError(f"espeak-ng has no voice {voice!r}")
        lib.espeak_SetParameter(_RATE, words_per_minute, 0)
        seed &= 0xFFFFFFFF  # both generators keep 32 bits of state
        lib.espeak_ng_SetRandSeed(seed)
        self._srand(seed)
        self._samples = []
        data = text.encode() + b"\0"
        status = lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise EngineError(f"espeak-ng synthesis failed with status {status}")
        lib.espeak_Synchronize()
        samples, self._samples = self._samples, []
        return samples


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
        voice = ESPEAK_VOICES[request.voice]
        pcm = self._lib.synthesize(text, voice, self.words_per_minute, request.seed)
        rate = self._lib.sample_rate
        if rate != SAMPLE_RATE:
            pcm = resample_poly(pcm, SAMPLE_RATE, rate).astype(np.float32)
        return Speech(pcm=pcm)

    async def generate(self, request: SpeechRequest) -> Speech:
        return await asyncio.to_thread(self.synthesize, request)
