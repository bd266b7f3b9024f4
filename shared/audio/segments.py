"""A book's MP3 and M4B as joins of its chapters' packets: each chapter is encoded once, when its
chunks are done (its MP3 is the chapter's own file where that is the same encoding), and the
book's files are those packets one after another, with separately encoded silences between.

A segment encoded on its own and set among others in one stream keeps its own encoder delay:
its input sample ``i`` decodes at the segment's first packet's place plus ``i`` (for LAME, its
576 samples of encoder delay and the decoder's 529 are skipped once, at the start of the file,
by the gapless header; for AAC, its 1024 samples of priming, by the MP4's edit list), and the
segment takes :func:`span` samples, whole frames. A segment's edges are silence (the pauses
between chapters), so the encoders' edges meet in silence. Chapters start on a grid of
:data:`GRID` samples, a whole number of frames of both codecs, so that the MP3 and the M4B
(and the captions, the chapter list) share one timeline; a pause between chapters is
lengthened by less than 0.4 s to reach it, and is at least 171 ms (the silence's frames).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from shared.audio import SAMPLE_RATE
from shared.audio.encode import AudioWriter


@dataclass(frozen=True)
class Codec:
    frame: int  # samples a packet decodes to
    extra: int  # frames an encode of n samples makes beyond ceil(n / frame)
    pad: bool  # a segment's input is padded to whole frames (:func:`padded`)


# Measured with FFmpeg's libmp3lame (24 kHz: MPEG-2 layer III, 576 samples a frame; its delay
# and its flush take two frames) and its AAC encoder (one frame of priming), for a segment's
# input as :func:`padded` makes it; the join checks every segment against these
# (SegmentMismatch), tests/unit/test_segments.py the counts, and
# tests/integration/test_segments.py that the joined files decode to one encode's timeline.
CODECS = {"mp3": Codec(576, 2, pad=False), "m4b": Codec(1024, 1, pad=True)}
JOINED = tuple(CODECS)  # the programme formats joined from segments
TIME_BASE = Fraction(1, SAMPLE_RATE)
GRID = math.lcm(*(c.frame for c in CODECS.values()))  # 9216 samples, 384 ms


class SegmentMismatch(RuntimeError):
    """A segment has not the packets its length says (another encoder version?)."""


def span(fmt: str, samples: int) -> int:
    """Samples a segment of ``samples`` input samples takes in the joined stream."""
    codec = CODECS[fmt]
    return (math.ceil(samples / codec.frame) + codec.extra) * codec.frame


def padded(fmt: str, samples: int) -> int:
    """The input of a segment of ``samples``: AAC's padded with silence to whole frames (with
    the FFmpeg PyAV 18.1 bundles, a last frame of 4 samples got no packet of its own after 876
    whole ones, and one after 40: by where the input's blocks fell); LAME's as it is (its
    count held for every length tried, and the gapless header of the book's MP3 then ends it
    where its last chapter ends)."""
    codec = CODECS[fmt]
    return -(-samples // codec.frame) * codec.frame if codec.pad else samples


def silence_for(fmt: str, gap: int) -> int:
    """Input samples of the silence that fills ``gap`` samples of the joined stream."""
    codec = CODECS[fmt]
    samples = gap - codec.extra * codec.frame
    assert samples >= codec.frame and samples % codec.frame == 0, (fmt, gap)
    return samples


def chapter_start(previous_start: int, content: int, pause: int) -> int:
    """Where a chapter starts: after the chapter before (which starts at ``previous_start`` and
    holds ``content`` samples), at least ``pause`` after its end, with room for the silence's own
    frames in every codec, on the grid."""
    least = max(
        content + pause,
        *(span(fmt, content) + span(fmt, c.frame) for fmt, c in CODECS.items()),
    )
    return previous_start + math.ceil(least / GRID) * GRID


def first_start(pause: int) -> int:
    """Where the first chapter starts: after the programme's opening pause, if it has one."""
    if not pause:
        return 0
    least = max(pause, *(span(fmt, c.frame) for fmt, c in CODECS.items()))
    return math.ceil(least / GRID) * GRID


class Joiner:
    """A book's file in ``fmt`` (one of :data:`JOINED`) made of segments appended in order:
    ``writer`` gives the container, its tags, chapters and cover, and the codec's settings
    (it encodes nothing itself)."""

    def __init__(self, writer: AudioWriter, fmt: str) -> None:
        self.writer, self.fmt, self.codec = writer, fmt, CODECS[fmt]
        self.at: int | None = None  # the next packet's place, in samples; None before the first

    def append(self, path: Path, samples: int) -> None:
        """The packets of ``path``, a segment of ``samples`` input samples."""
        writer, frame = self.writer, self.codec.frame
        writer.flush()  # it encoded nothing: no packets
        with av.open(str(path)) as source:
            stream = source.streams.audio[0]
            tb = stream.time_base or TIME_BASE
            packets = 0
            for packet in source.demux(stream):
                if not packet.size or packet.pts is None:  # the demuxer's end marker
                    continue
                if self.at is None:  # the first segment's priming keeps its place before 0
                    self.at = round(packet.pts * tb * SAMPLE_RATE)
                duration = round((packet.duration or 0) * tb * SAMPLE_RATE)
                packet.stream = writer.stream
                packet.time_base = TIME_BASE
                packet.pts = packet.dts = self.at
                packet.duration = duration or frame  # the last one's says where the file ends
                writer.mux([packet])
                self.at += frame
                packets += 1
        if packets * frame != span(self.fmt, samples):
            raise SegmentMismatch(
                f"{path.name}: {packets} packets for {samples} samples, "
                f"not {span(self.fmt, samples) // frame}"
            )
