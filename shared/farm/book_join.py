"""The book's MP3 and M4B as joins of its chapters' segments (:mod:`shared.audio.segments`),
which each chapter's stitch encoded as it made the chapter's file: the book's stitch
downloads them one at a time and appends their packets, so that the book is ready seconds after
its last chapter instead of encoding the whole programme again."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.audio.encode import AudioWriter
from shared.audio.presets import Mastering
from shared.audio.programme import Layout, Part
from shared.audio.segments import Joiner, silence_for, span
from shared.farm import outputs
from shared.farm.chapter_stitch import StitchCost, file_is_segment, segment_key
from shared.farm.context import FarmContext
from shared.farm.leases import Lease
from shared.infra.models import Chapter, Job


@dataclass(frozen=True)
class Book:
    """What the book's files are made of."""

    job: Job
    chapters: list[Chapter]
    parts: list[Part]
    layout: Layout
    mastering: Mastering
    cover: bytes | None


def join(
    farm: FarmContext, lease: Lease, book: Book, fmt: str, path: Path, cost: StitchCost
) -> bool:
    """The book's ``fmt`` file as its chapters' segments one after another, with silences
    between them where the layout has them; False (nothing written) where a chapter has no
    segment (made before chapters had them)."""
    mastering, layout, folder = book.mastering, book.layout, path.parent
    keys = [
        chapter.output_key
        if fmt == "mp3" and file_is_segment(mastering)
        else segment_key(book.job.id, chapter.version, chapter.index, fmt)
        for chapter in book.chapters
    ]
    spans = _chapter_spans(book.parts, layout)
    marks = layout.marks
    tags = outputs.book_tags(book.job)
    silences: dict[int, tuple[Path, int]] = {}
    segment = folder / f"segment.{fmt}"
    writing = AudioWriter(
        path, fmt, mastering.bitrate_kbps, tags, chapters=marks, cover=book.cover, cpu=cost.encode
    )
    with writing as writer:
        joiner, at = Joiner(writer, fmt), 0
        for key, (begin, content) in zip(keys, spans, strict=True):
            lease.check()
            if key is None or not farm.store.download_file(key, segment):
                break
            if begin > at:
                if begin - at not in silences:
                    silences[begin - at] = _silence(fmt, begin - at, mastering, folder, cost)
                joiner.append(*silences[begin - at])
            joiner.append(segment, content)
            at = begin + span(fmt, content)
        else:
            return True
    path.unlink()
    return False


def _chapter_spans(parts: list[Part], layout: Layout) -> list[tuple[int, int]]:
    """Each chapter's first sample in the programme, and its samples (its segment's input)."""
    spans: dict[int, tuple[int, int]] = {}
    for part, start in zip(parts, layout.starts, strict=True):
        begin = spans.get(part.chapter, (start, 0))[0]
        spans[part.chapter] = (begin, start + part.stats.samples - begin)
    return [spans[chapter] for chapter in sorted(spans)]


def _silence(
    fmt: str, gap: int, mastering: Mastering, folder: Path, cost: StitchCost
) -> tuple[Path, int]:
    """A segment of silence that fills ``gap`` samples of the joined stream, encoded."""
    samples = silence_for(fmt, gap)
    path = folder / f"silence-{gap}.{fmt}"
    with AudioWriter(path, fmt, mastering.bitrate_kbps, cpu=cost.encode) as writer:
        writer.write(np.zeros(samples, np.float32))
    return path, samples
