"""Encoding through FFmpeg's libraries (PyAV): the one table of Lyre's encodings, the farm's
files (WAV, FLAC, MP3, Opus, and M4B: AAC in MP4, with chapters and cover art) and OpenAI's
speech formats (streamed by :mod:`shared.audio.stream`), and the one loop that turns float32
PCM into frames and muxes them as they come. Tags, chapters and the cover go into the
container as FFmpeg writes them (ID3 in MP3 with CHAP frames and a CTOC, iTunes atoms and a
chapter list in MP4), so that players read them; FLAC's and Opus's chapters as Vorbis comments
(``CHAPTERnnn``), written after the file through mutagen.

Every file is a function of its samples, tags, chapters and cover alone: the muxers write in
FFmpeg's bit-exact mode, so an Ogg stream's serial number is not random (``oggenc.c`` draws it
from ``av_get_random_seed`` otherwise) and no muxer version is written; MP4's creation times
stay 0, as no ``creation_time`` is given. A seeded job's files are the same bytes every time."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, cast, get_args

import av
import mutagen
import numpy as np
from av.audio.stream import AudioStream
from av.stream import Disposition
from av.video.stream import VideoStream

from shared.audio import SAMPLE_RATE
from shared.audio.captions import clock
from shared.infra.cpu import CpuClock


@dataclass(frozen=True)
class Encoding:
    muxer: str  # FFmpeg's
    codec: str  # FFmpeg's encoder
    content_type: str  # what the object store and the API serve it as
    lossy: bool  # takes a bit rate (AudioSettings.bitrate_kbps)
    streams: bool = True  # the muxer can write to a pipe, never seeking back
    options: dict[str, str] = field(default_factory=dict)  # the muxer's
    streamed_options: dict[str, str] = field(default_factory=dict)  # the muxer's, to a pipe
    codec_options: dict[str, str] = field(default_factory=dict)  # the encoder's
    # where FFmpeg's muxer writes a chapter list: MP4's; MP3's ID3 CHAP frames and a CTOC
    chapters: bool = False
    # chapters as CHAPTERnnn / CHAPTERnnnNAME comments, written by AudioWriter through mutagen:
    # FFmpeg's FLAC muxer writes none, and its Ogg muxer (PyAV 18.1's FFmpeg) wrote none for a
    # stream without tags and 00:00:12.520 for a chapter at 11.520 s
    comment_chapters: bool = False
    cover: bool = False  # the container keeps cover art


ENCODINGS: dict[str, Encoding] = {
    "wav": Encoding("wav", "pcm_s16le", "audio/wav", lossy=False),
    # the header holds the number of samples: a FLAC streamed without it is refused by common
    # readers (libsndfile)
    "flac": Encoding(
        "flac", "flac", "audio/flac", lossy=False, streams=False, comment_chapters=True
    ),
    "mp3": Encoding("mp3", "libmp3lame", "audio/mpeg", lossy=True, chapters=True),
    # a page every 100 ms rather than every second, for a listener waiting on it
    "opus": Encoding(
        "ogg",
        "libopus",
        "audio/ogg",
        lossy=True,
        streamed_options={"page_duration": "100000"},
        comment_chapters=True,
    ),
    # FFmpeg's AAC encoder with its "fast" coder: on bench/stitch.py's speech-like audio
    # 90x real time against 19x for the default "twoloop", and 21.5 dB from the source
    # against 13.2 (64 kbps mono, 24 kHz). MP4's index is written last, pointing back.
    "m4b": Encoding(
        "mp4",
        "aac",
        "audio/mp4",
        lossy=True,
        streams=False,
        options={"brand": "M4B "},
        codec_options={"aac_coder": "fast"},
        chapters=True,
        cover=True,
    ),
    "aac": Encoding("adts", "aac", "audio/aac", lossy=True),  # bare frames; the default coder
    "pcm": Encoding("s16le", "pcm_s16le", "audio/pcm", lossy=False),  # the samples alone
}
AudioFormat = Literal["wav", "flac", "mp3", "opus", "m4b"]  # the API's, the CLI's, the file's
FORMATS: tuple[AudioFormat, ...] = get_args(AudioFormat)
SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]  # OpenAI's, streamed
SPEECH_FORMATS: tuple[SpeechFormat, ...] = get_args(SpeechFormat)
assert set(ENCODINGS) == {*FORMATS, *SPEECH_FORMATS}, "every format needs its encoding"
_BLOCK = 4096
BITEXACT = cast(int, av.container.Flags.bitexact.value)  # no random ids, dates or versions


@dataclass(frozen=True)
class ChapterMark:
    title: str
    start: int  # samples at SAMPLE_RATE
    end: int


class Encoder:
    """Float32 mono PCM at ``SAMPLE_RATE`` in (:meth:`write`), encoded as it comes into one
    stream of ``encoding``, muxed into a container on ``target`` (a path, or a file object
    that the muxer writes to); memory stays at one block. ``rate`` resamples
    (libswresample) for formats that want another rate (ACX: 44.1 kHz); ``options`` add to
    the muxer's."""

    def __init__(
        self,
        target: object,
        encoding: Encoding,
        bitrate_kbps: int = 64,
        *,
        rate: int = SAMPLE_RATE,
        options: Mapping[str, str] | None = None,
        cpu: CpuClock | None = None,
    ) -> None:
        options = {**encoding.options, **(options or {})}
        self.container = av.open(target, mode="w", format=encoding.muxer, container_options=options)
        self.container.flags |= BITEXACT
        self.stream = cast(
            AudioStream, self.container.add_stream(encoding.codec, rate=rate, layout="mono")
        )
        if encoding.lossy:
            self.stream.bit_rate = bitrate_kbps * 1000
        if encoding.codec_options:
            self.stream.codec_context.options = dict(encoding.codec_options)
        self._timed = rate == SAMPLE_RATE  # else PyAV's encoder resamples; it sets the pts
        self.samples = 0
        self.end_pts = 0  # where the next packet of this stream starts
        self._flushed = False
        self.cpu = cpu or CpuClock()  # the encoding's CPU seconds, on whichever thread writes

    def write(self, pcm: np.ndarray) -> None:
        with self.cpu.counting():
            data = (np.clip(pcm, -1.0, 1.0) * 32767).round().astype(np.int16)
            for start in range(0, len(data), _BLOCK):
                block = data[start : start + _BLOCK].reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
                frame.sample_rate = SAMPLE_RATE
                frame.pts = self.samples if self._timed else None
                self.samples += block.shape[1]
                self.mux(self.stream.encode(frame))

    def flush(self) -> None:
        """End the stream: mux what the encoder still holds."""
        if not self._flushed:
            with self.cpu.counting():
                self.mux(self.stream.encode(None))
            self._flushed = True

    def mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if packet.pts is not None:
                self.end_pts = packet.pts + (packet.duration or 0)
        self.container.mux(packets)

    def close(self) -> None:
        self.flush()
        with self.cpu.counting():
            self.container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def encode_bytes(pcm: np.ndarray, fmt: str = "wav") -> bytes:
    """``pcm`` as one small file in memory (a chunk to listen to)."""
    buffer = io.BytesIO()
    with Encoder(buffer, ENCODINGS[fmt]) as encoder:
        encoder.write(pcm)
    return buffer.getvalue()


class AudioWriter(Encoder):
    """An :class:`Encoder` to the file ``path`` in ``fmt`` (one of :data:`FORMATS`). ``tags``
    are FFmpeg's names (title, artist, album, track, language); ``chapters`` are written where
    the format keeps them (all but WAV: :class:`Encoding`), ``cover`` (JPEG or PNG bytes) in an
    M4B. The encoding's CPU seconds add up on ``cpu`` (one clock for several files)."""

    def __init__(
        self,
        path: Path | str,
        fmt: str,
        bitrate_kbps: int = 64,
        tags: Mapping[str, str] | None = None,
        *,
        rate: int = SAMPLE_RATE,
        chapters: Sequence[ChapterMark] = (),
        cover: bytes | None = None,
        cpu: CpuClock | None = None,
    ) -> None:
        encoding = ENCODINGS[fmt]
        super().__init__(str(path), encoding, bitrate_kbps, rate=rate, cpu=cpu)
        for name, value in (tags or {}).items():
            if value:  # Ogg keeps tags on the stream, the other containers on the file
                self.container.metadata[name] = value
                self.stream.metadata[name] = value
        self.path = Path(path)
        self.comment_chapters = list(chapters) if encoding.comment_chapters else []
        if encoding.chapters and chapters:
            self.container.set_chapters(
                [
                    {
                        "id": i + 1,
                        "start": mark.start,
                        "end": mark.end,
                        "time_base": Fraction(1, SAMPLE_RATE),
                        "metadata": {"title": mark.title},
                    }
                    for i, mark in enumerate(chapters)
                ]
            )
        if encoding.cover and cover:
            self._add_cover(cover)

    def close(self) -> None:
        super().close()
        if self.comment_chapters:  # the Vorbis comments' chapter convention
            tagged = mutagen.File(self.path)
            for i, mark in enumerate(self.comment_chapters):
                at = clock(mark.start / SAMPLE_RATE)
                tagged[f"CHAPTER{i:03d}"], tagged[f"CHAPTER{i:03d}NAME"] = at, mark.title
            tagged.save()
            self.comment_chapters = []

    def _add_cover(self, image: bytes) -> None:
        """Cover art as FFmpeg's muxer takes it: one packet on an attached-picture stream."""
        with av.open(io.BytesIO(image)) as probe:
            video = probe.streams.video[0]
            codec, width, height = video.codec_context.name, video.width, video.height
            pix_fmt = video.codec_context.pix_fmt
        picture = cast(VideoStream, self.container.add_stream(codec))
        picture.width, picture.height = width, height
        if pix_fmt:  # FFmpeg opens the stream's codec, which wants to know the picture
            picture.pix_fmt = pix_fmt
        picture.disposition = Disposition.attached_pic
        self.container.start_encoding()
        packet = av.Packet(image)
        packet.stream, packet.pts, packet.dts = picture, 0, 0
        self.container.mux(packet)

    def append_encoded(self, path: Path | str) -> None:
        """End this encoder's output, then append the packets of ``path``, the same codec
        encoded separately (the second half of a programme, encoded in parallel)."""
        self.flush()
        offset, start = self.end_pts, None
        with av.open(str(path)) as source:
            for packet in source.demux(audio=0):
                if not packet.size or packet.pts is None:  # the demuxer's end marker
                    continue
                start = packet.pts if start is None else start
                packet.pts = packet.dts = offset + packet.pts - start
                packet.stream = self.stream
                self.mux([packet])
