"""Streamed encoding through FFmpeg's libraries (PyAV): WAV, FLAC, MP3, Opus."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, cast, get_args

import av
import numpy as np
from av.audio.stream import AudioStream

from shared.audio import SAMPLE_RATE

AudioFormat = Literal["wav", "flac", "mp3", "opus"]  # the API's, the CLI's and the file's name


@dataclass(frozen=True)
class Encoding:
    container: str  # FFmpeg's muxer
    codec: str  # FFmpeg's encoder
    content_type: str  # what the object store serves it as
    lossy: bool  # takes AudioSettings.bitrate_kbps


ENCODINGS: dict[str, Encoding] = {
    "wav": Encoding("wav", "pcm_s16le", "audio/wav", lossy=False),
    "flac": Encoding("flac", "flac", "audio/flac", lossy=False),
    "mp3": Encoding("mp3", "libmp3lame", "audio/mpeg", lossy=True),
    "opus": Encoding("ogg", "libopus", "audio/ogg", lossy=True),
}
FORMATS: tuple[AudioFormat, ...] = get_args(AudioFormat)
assert set(ENCODINGS) == set(FORMATS), "every format needs its encoding"
_BLOCK = 4096


class AudioWriter:
    """Write float32 mono PCM to a file as it comes; memory stays at one block."""

    def __init__(
        self, path: Path | str, fmt: str, bitrate_kbps: int = 64, title: str | None = None
    ) -> None:
        encoding = ENCODINGS[fmt]
        self.container = av.open(str(path), mode="w", format=encoding.container)
        self.stream = cast(
            AudioStream, self.container.add_stream(encoding.codec, rate=SAMPLE_RATE, layout="mono")
        )
        if title:  # Ogg keeps tags on the stream, the other containers on the file
            self.container.metadata["title"] = title
            self.stream.metadata["title"] = title
        if encoding.lossy:
            self.stream.bit_rate = bitrate_kbps * 1000
        self.samples = 0
        self._flushed = False
        self._end_pts = 0  # where the next packet of this stream starts

    def write(self, pcm: np.ndarray) -> None:
        data = (np.clip(pcm, -1.0, 1.0) * 32767).round().astype(np.int16)
        for start in range(0, len(data), _BLOCK):
            block = data[start : start + _BLOCK].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self.samples
            self.samples += block.shape[1]
            self._mux(self.stream.encode(frame))

    def append_encoded(self, path: Path | str) -> None:
        """End this encoder's output, then append the packets of ``path``, the same codec
        encoded separately (the second half of a programme, encoded in parallel)."""
        self._flush()
        offset, start = self._end_pts, None
        with av.open(str(path)) as source:
            for packet in source.demux(audio=0):
                if not packet.size or packet.pts is None:  # the demuxer's end marker
                    continue
                start = packet.pts if start is None else start
                packet.pts = packet.dts = offset + packet.pts - start
                packet.stream = self.stream
                self._mux([packet])

    def close(self) -> None:
        self._flush()
        self.container.close()

    def _flush(self) -> None:
        if not self._flushed:
            self._mux(self.stream.encode(None))
            self._flushed = True

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if packet.pts is not None:
                self._end_pts = packet.pts + (packet.duration or 0)
        self.container.mux(packets)

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
