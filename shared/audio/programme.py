"""Join chunks into one programme: pauses by boundary kind, a gain per chapter, and where each
chunk and chapter lies in it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from shared.audio import SAMPLE_RATE
from shared.audio.encode import AudioWriter, ChapterMark
from shared.audio.finish import ChunkStats
from shared.audio.limiter import limit_peaks
from shared.audio.loudness import STEP_S, integrated_loudness
from shared.audio.presets import Mastering
from shared.audio.segments import chapter_start, first_start
from shared.infra.settings import AudioSettings
from shared.text.chunking import Boundary


def pause_seconds(boundary: Boundary, settings: AudioSettings) -> float:
    """Silence inserted before a chunk that follows a boundary of this kind."""
    return settings.pauses_s[boundary]


def pause_samples(boundary: Boundary, settings: AudioSettings) -> int:
    return round(pause_seconds(boundary, settings) * SAMPLE_RATE)


def pause_before(boundary: Boundary, pause_s: float | None, settings: AudioSettings) -> int:
    """Samples of pause before a chunk: SSML's ``<break time>`` where it set one."""
    return pause_samples(boundary, settings) if pause_s is None else round(pause_s * SAMPLE_RATE)


MAX_GAIN_DB = 30.0  # a quiet chapter is not brought to its target by more than this


def loudness_gain(stats: Sequence[ChunkStats], pauses: Sequence[int], target_lufs: float) -> float:
    """Linear gain that brings the chunks, with their pauses, to the loudness target, from the
    stored step energies alone; 1 for silence. The peaks are the limiter's (``shape``)."""
    parts = []
    for chunk, pause in zip(stats, pauses, strict=True):
        parts += [np.zeros(round(pause / SAMPLE_RATE / STEP_S)), chunk.steps]
    loudness = integrated_loudness(np.concatenate(parts)) if parts else -math.inf
    return _linear(target_lufs - loudness)


def rms_gain(stats: Sequence[ChunkStats], silence: int, target_dbfs: float) -> float:
    """Linear gain to a file's RMS target (ACX), the file being the chunks and ``silence``
    samples of pauses and room tone; 1 for silence."""
    samples = sum(chunk.samples for chunk in stats) + silence
    energy = sum(chunk.energy for chunk in stats)
    rms_db = 10 * math.log10(energy / samples) if energy > 0 and samples else -math.inf
    return _linear(target_dbfs - rms_db)


def _linear(gain_db: float) -> float:
    return 10 ** (min(gain_db, MAX_GAIN_DB) / 20) if math.isfinite(gain_db) else 1.0


def shape(pcm: np.ndarray, stats: ChunkStats, gain: float, ceiling_dbtp: float) -> np.ndarray:
    """A chunk at its chapter's gain with its true peaks under the ceiling: the gain reaches the
    target (speech's crest factor would otherwise hold a -16 LUFS podcast near -19) and the
    limiter runs only on a chunk whose stored peak says it must."""
    out = pcm * np.float32(gain)
    if stats.peak * gain > 10 ** (ceiling_dbtp / 20):
        out = limit_peaks(out, ceiling_dbtp)
    return out


@dataclass(frozen=True)
class Part:
    """A chunk as the stitch sees it: where it belongs, and its stored statistics."""

    index: int
    chapter: int
    boundary: Boundary
    stats: ChunkStats
    caption: str = ""
    pause_s: float | None = None  # before it, where SSML set one; else its boundary's
    marks: tuple[tuple[str, int], ...] = ()  # SSML's: name, spoken characters before it


@dataclass(frozen=True)
class Layout:
    """Where everything lies: the programme is each chunk after its pause, at its chapter's
    gain; a chapter's own file is its chunks between room tone, without the pause before the
    first."""

    pauses: list[int]  # samples of silence before each chunk in the programme
    starts: list[int]  # each chunk's first sample in the programme
    gains: dict[int, float]  # by chapter
    marks: list[ChapterMark]  # chapters in the programme, by their first chunk's start
    samples: int
    ceiling_dbtp: float  # true peaks are limited to this


def lay_out(
    parts: Sequence[Part],
    titles: Sequence[str],
    settings: AudioSettings,
    mastering: Mastering,
    joined: bool = False,
) -> Layout:
    """Where everything lies; ``joined``: the programme is a join of its chapters' segments,
    each chapter starting on their grid (:mod:`shared.audio.segments`)."""
    pauses = [pause_before(p.boundary, p.pause_s, settings) for p in parts]
    starts, at, chapter_at = [], 0, 0
    for i, part in enumerate(parts):
        if joined and (i == 0 or part.chapter != parts[i - 1].chapter):
            begin = (
                chapter_start(chapter_at, at - chapter_at, pauses[i])
                if i
                else first_start(pauses[i])
            )
            pauses[i], chapter_at = begin - at, begin
        starts.append(at + pauses[i])
        at += pauses[i] + part.stats.samples
    by_chapter: dict[int, list[int]] = {}
    for i, part in enumerate(parts):
        by_chapter.setdefault(part.chapter, []).append(i)
    gains: dict[int, float] = {}
    marks: list[ChapterMark] = []
    for chapter, mine in sorted(by_chapter.items()):
        stats = [parts[i].stats for i in mine]
        inner = [0, *(pauses[i] for i in mine[1:])]
        if mastering.loudness == "rms":
            tone = round((mastering.head_s + mastering.tail_s) * SAMPLE_RATE)
            gains[chapter] = rms_gain(stats, sum(inner) + tone, mastering.target)
        else:
            gains[chapter] = loudness_gain(stats, inner, mastering.target)
        title = titles[chapter] if chapter < len(titles) and titles[chapter] else ""
        start = 0 if not marks else starts[mine[0]]
        if marks:
            marks[-1] = ChapterMark(marks[-1].title, marks[-1].start, start)
        marks.append(ChapterMark(title or f"Chapter {len(marks) + 1}", start, at))
    return Layout(pauses, starts, gains, marks, at, mastering.ceiling_db)


def join_chunks(
    pieces: Iterable[tuple[int, np.ndarray]],
    gain: float,
    writer: AudioWriter,
) -> int:
    """Write (pause samples, chunk PCM) pairs in order; return the samples written. Pauses
    are digital silence."""
    written = 0
    for pause, pcm in pieces:
        writer.write(np.zeros(pause, np.float32))
        writer.write(pcm * np.float32(gain))
        written += pause + len(pcm)
    return written


# LAME puts 1105 samples (its encoder delay plus the decoder's) ahead of a stream's first input
# sample; a stream whose frames follow another's in one file also starts one granule (576) late.
# Measured with FFmpeg's decoder; tests/integration/test_stages.py checks that joined halves
# decode to the programme's exact length, aligned with a single encode.
MP3_FRAME = 1152
LAME_DELAY = 1105
MP3_SEAM = LAME_DELAY + 576
PARALLEL_MIN_SAMPLES = 10 * 60 * SAMPLE_RATE  # shorter programmes encode in one pass


@dataclass(frozen=True)
class Seam:
    """Where a programme is cut into two MP3 halves that are encoded at the same time.

    The cut falls inside the pause before chunk ``index``: the first half ends with ``head``
    samples of that pause, so that its frames end exactly there, and the second half starts
    with ``tail`` samples of it, the rest less what the second encoder puts ahead.
    """

    index: int
    head: int
    tail: int


def mp3_seam(pauses: Sequence[int], samples: Sequence[int]) -> Seam | None:
    """The seam nearest the middle of a long programme, in a pause long enough to hold it."""
    starts = np.cumsum([0, *(p + s for p, s in zip(pauses, samples, strict=True))])
    if starts[-1] < PARALLEL_MIN_SAMPLES:
        return None
    fits = [k for k in range(1, len(pauses)) if pauses[k] >= MP3_FRAME + MP3_SEAM]
    if not fits:
        return None
    index = min(fits, key=lambda k: abs(int(starts[k]) - starts[-1] / 2))
    head = -(int(starts[index]) + LAME_DELAY) % MP3_FRAME
    return Seam(index, head, pauses[index] - head - MP3_SEAM)
