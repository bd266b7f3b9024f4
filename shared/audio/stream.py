"""Audio encoded as it is made, for a listener waiting on it: OpenAI's speech formats (mp3,
opus, aac, flac, wav, pcm), each block of PCM in giving the bytes ready to send out.

Every format but one streams: the muxer writes to a pipe (no seeking back), so MP3 has no Xing
header, WAV says its length is unknown (0xFFFFFFFF, as streamed WAV does) and Ogg pages are
cut every 100 ms rather than every second. FLAC is the exception: its header holds the number
of samples, and a FLAC streamed without it is refused by common readers (libsndfile), so it is
encoded whole and sent at the end. All are 24 kHz mono, as the speech is (and OpenAI's is).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Literal, cast, get_args

import av
import numpy as np
from av.audio.stream import AudioStream

from shared.audio import SAMPLE_RATE
from shared.audio.encode import BITEXACT
from shared.audio.tempo import TimeStretch

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
SPEECH_FORMATS: tuple[SpeechFormat, ...] = get_args(SpeechFormat)


@dataclass(frozen=True)
class StreamEncoding:
    container: str | None  # FFmpeg's muxer; None: raw samples, no container
    codec: str | None  # FFmpeg's encoder
    content_type: str
    streams: bool  # bytes go out as they are encoded; else the whole file at the end
    options: dict[str, str] = field(default_factory=dict)  # the muxer's


STREAM_ENCODINGS: dict[str, StreamEncoding] = {
    "mp3": StreamEncoding("mp3", "libmp3lame", "audio/mpeg", streams=True),
    "opus": StreamEncoding(
        "ogg", "libopus", "audio/ogg", streams=True, options={"page_duration": "100000"}
    ),
    "aac": StreamEncoding("adts", "aac", "audio/aac", streams=True),
    "flac": StreamEncoding("flac", "flac", "audio/flac", streams=False),
    "wav": StreamEncoding("wav", "pcm_s16le", "audio/wav", streams=True),
    "pcm": StreamEncoding(None, None, "audio/pcm", streams=True),  # s16le, 24 kHz, mono
}
assert set(STREAM_ENCODINGS) == set(SPEECH_FORMATS), "every format needs its encoding"
_BLOCK = 4096


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
        self.encoding = STREAM_ENCODINGS[fmt]
        self.stretch = TimeStretch(speed) if speed != 1.0 else None
        self.samples = 0  # written to the file, after the time-stretch
        self._out: _Pipe | io.BytesIO = _Pipe() if self.encoding.streams else io.BytesIO()
        self.container = None
        if self.encoding.container is None or self.encoding.codec is None:
            return
        options = {"flush_packets": "1", **self.encoding.options}  # to the pipe at each packet
        self.container = av.open(
            self._out, mode="w", format=self.encoding.container, container_options=options
        )
        self.container.flags |= BITEXACT  # the same speech, the same bytes (Ogg's serial)
        self.stream = cast(
            AudioStream,
            self.container.add_stream(self.encoding.codec, rate=SAMPLE_RATE, layout="mono"),
        )
        if self.encoding.codec not in ("flac", "pcm_s16le"):
            self.stream.bit_rate = bitrate_kbps * 1000

    def write(self, pcm: np.ndarray) -> bytes:
        if self.stretch is not None:
            pcm = self.stretch.process(pcm)
        self._encode(pcm)
        return self._take()

    def close(self) -> bytes:
        if self.stretch is not None:
            self._encode(self.stretch.flush())
        if self.container is not None:
            self.container.mux(self.stream.encode(None))
            self.container.close()
            self.container = None
        if isinstance(self._out, io.BytesIO):
            return self._out.getvalue()
        return self._take()

    def _encode(self, pcm: np.ndarray) -> None:
        data = (np.clip(pcm, -1.0, 1.0) * 32767).round().astype("<i2")
        if self.container is None:  # pcm: the samples themselves
            assert isinstance(self._out, _Pipe)
            self._out.write(data.tobytes())
            self.samples += len(data)
            return
        for start in range(0, len(data), _BLOCK):
            block = data[start : start + _BLOCK].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, self.samples
            self.samples += block.shape[1]
            self.container.mux(self.stream.encode(frame))

    def _take(self) -> bytes:
        return self._out.take() if isinstance(self._out, _Pipe) else b""
