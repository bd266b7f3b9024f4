"""The codecs' arithmetic the joined book files rest on (``shared.audio.segments``), checked
against the FFmpeg installed here: how many packets a segment makes, and that the chapter grid
leaves room for a silence between chapters in every codec."""

from __future__ import annotations

import av
import numpy as np
import pytest

from shared.audio.encode import AudioWriter
from shared.audio.segments import (
    CODECS,
    GRID,
    chapter_start,
    first_start,
    padded,
    silence_for,
    span,
)


def packets(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for p in container.demux(audio=0) if p.size)


@pytest.mark.parametrize("fmt", sorted(CODECS))
def test_a_segment_takes_the_frames_its_length_says(fmt, tmp_path):
    """As the chapter's stitch writes them (``padded``). Lengths a few samples past a frame, at
    several places of the encoder's blocks, are where FFmpeg's AAC encoder counted one short
    unpadded (876 frames and 4 samples: 877 packets, not 878)."""
    rng = np.random.default_rng(7)
    frame = CODECS[fmt].frame
    for frames in (1, 3, 40, 876):
        for extra in (0, 1, 4, 8, 11, frame // 2, frame - 1):
            n = frames * frame + extra
            path = tmp_path / f"{n}.{fmt}"
            with AudioWriter(path, fmt) as writer:
                writer.write((0.1 * rng.standard_normal(n)).astype(np.float32))
                writer.write(np.zeros(padded(fmt, n) - n, np.float32))
            assert packets(path) * frame == span(fmt, n), n


def test_every_chapter_starts_on_the_grid_with_room_for_a_silence_in_each_codec():
    assert GRID % CODECS["mp3"].frame == GRID % CODECS["m4b"].frame == 0
    rng = np.random.default_rng(3)
    for _ in range(200):
        previous, content, pause = (int(v) for v in rng.integers(0, [10**6, 10**6, 10**4]))
        previous -= previous % GRID
        start = chapter_start(previous, content, pause)
        assert start % GRID == 0 and start - previous >= content + pause
        # a pause lengthened by less than 384 ms, to at least 171 ms (AAC's frames at most)
        assert start - previous - content - max(pause, 4096) < GRID
        for fmt in CODECS:
            gap = start - previous - span(fmt, content)
            assert silence_for(fmt, gap) >= CODECS[fmt].frame
    assert first_start(0) == 0 and first_start(1) == GRID and first_start(GRID + 1) == 2 * GRID
