"""Audio encoded as it is made, for a listener waiting on it: OpenAI's speech formats (mp3,
opus, aac, flac, wav, pcm: :data:`shared.audio.encode.SPEECH_FORMATS`), each block of PCM in
giving the bytes ready to send out, through the files' encoder (:mod:`shared.audio.encode`).

Every format but one streams: the muxer writes to a pipe (no seeking back), so MP3 has no Xing
header, WAV says its length is unknown (0xFFFFFFFF, as streamed WAV does), Ogg pages are cut
every 100 ms rather than every second and pcm is the samples alone (FFmpeg's s16le muxer).
FLAC is the exception: its header holds the number of samples, and a FLAC streamed without it
is refused by common readers (libsndfile), so it is encoded whole and sent at the end. All
are 24 kHz mono, as the speech is (and OpenAI's is); all are bit-exact, as the files are: the
same speech, the same bytes (Ogg's serial number).
"""

from __future__ import annotations

import io

import numpy as np

from shared.audio.encode import ENCODINGS, Encoder
from shared.audio.tempo import TimeStretch


class _Pipe:
    """Where the muxer writes: bytes collected until taken. No ``seek``, so FFmpeg writes it
    as a stream."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


class StreamEncoder:
    """Float32 mono PCM at ``SAMPLE_RATE`` in (:meth:`write`), the file's bytes out as soon as
    they are encoded; :meth:`close` gives the rest. ``speed`` other than 1 plays the speech
    faster or slower at its pitch (:class:`shared.audio.tempo.TimeStretch`)."""

    def __init__(self, fmt: str, bitrate_kbps: int = 64, speed: float = 1.0) -> None:
        self.encoding = ENCODINGS[fmt]
        self.stretch = TimeStretch(speed) if speed != 1.0 else None
        self._out: _Pipe | io.BytesIO = _Pipe() if self.encoding.streams else io.BytesIO()
        options = {"flush_packets": "1", **self.encoding.streamed_options}  # at each packet
        self._encoder = Encoder(self._out, self.encoding, bitrate_kbps, options=options)

    @property
    def samples(self) -> int:
        """Samples written to the file, after the time-stretch."""
        return self._encoder.samples

    def write(self, pcm: np.ndarray) -> bytes:
        if self.stretch is not None:
            pcm = self.stretch.process(pcm)
        self._encoder.write(pcm)
        return self._take()

    def close(self) -> bytes:
        if self.stretch is not None:
            self._encoder.write(self.stretch.flush())
        self._encoder.close()
        if isinstance(self._out, io.BytesIO):
            return self._out.getvalue()
        return self._take()

    def _take(self) -> bytes:
        return self._out.take() if isinstance(self._out, _Pipe) else b""
