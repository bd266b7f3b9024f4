"""A job's read-along EPUB (``book.epub``): the book's text with its narration, each sentence
paired with its clip of its chapter's audio (``shared.text.read_along``). Made by the book's
stitch, so a redone chapter or chunk makes it again.

The audio is each chapter's AAC segment of the M4B (``shared.farm.chapter_stitch``), an M4A
of its own whose time is the chapter's captions' time less the chapter's start; a book of
one chapter, or one whose chapters were made before segments existed, uses its M4B whole,
in the programme's time. The text is the submitted EPUB's where there was one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from shared.audio import SAMPLE_RATE
from shared.audio.programme import Part, lay_out
from shared.farm.book_join import Book
from shared.farm.chapter_stitch import segment_key
from shared.farm.context import FarmContext
from shared.farm.outputs import cues_by_part, narrator
from shared.infra.storage import source_key
from shared.text.chunking import Boundary
from shared.text.read_along import About, Clip, Narrated, narrate, write
from shared.text.read_along_books import from_epub, from_text

DOWNLOADS = 4  # segments downloaded at once: a 10-hour book has hundreds, each a GET
PARAGRAPHS = {Boundary.START, Boundary.PARAGRAPH, Boundary.SPEAKER, Boundary.CHAPTER}


def make_read_along(
    farm: FarmContext, book: Book, folder: Path, m4b: Path, joined: bool
) -> tuple[Path, float]:
    """``book.epub`` in ``folder`` (``m4b``: the book's M4B, made), and the share of the spoken
    text that has a clip."""
    job = book.job
    narrated = _chapters(farm, book, folder) if joined else None
    if narrated is None:
        narrated = _whole(book, m4b)
    about = About(
        identifier=f"urn:uuid:{job.id}",
        title=job.title or "Untitled",
        author=job.author,
        language=job.language or "en",
        narrator=narrator(job),
        modified=job.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
    source = folder / "source.epub"
    if farm.store.download_file(source_key(str(job.id)), source):
        sentences = [clip.text for chapter in narrated for clip in chapter.clips]
        unpacked = farm.settings.farm.max_unpacked_bytes
        package = from_epub(source.read_bytes(), sentences, unpacked)
    else:
        package = from_text(about, narrated)  # a text has no cover: only an EPUB brings one
    coverage = narrate(package, about, narrated)
    out = folder / "book.epub"
    write(package, out)
    return out, coverage


def _chapters(farm: FarmContext, book: Book, folder: Path) -> list[Narrated] | None:
    """Each chapter with its own segment as its audio, or None if one has none."""
    audio = [folder / f"read-along-{c.index + 1:03d}.m4a" for c in book.chapters]
    keys = [segment_key(book.job.id, c.version, c.index, "m4b") for c in book.chapters]
    with ThreadPoolExecutor(DOWNLOADS, "lyre-read-along") as pool:
        if not all(pool.map(farm.store.download_file, keys, audio)):
            return None
    narrated = []
    for chapter, path in zip(book.chapters, audio, strict=True):
        parts = [p for p in book.parts if p.chapter == chapter.index]
        layout = lay_out(parts, [], farm.settings.audio, book.mastering)
        begin = layout.starts[0] / SAMPLE_RATE if parts else 0.0  # the segment's sample 0
        clips = [
            Clip(cue.text, cue.start - begin, cue.end - begin, _opens(part, k))
            for part, cues in cues_by_part(parts, layout)
            for k, cue in enumerate(cues)
        ]
        narrated.append(Narrated(chapter.title, path, clips))
    return narrated


def _whole(book: Book, m4b: Path) -> list[Narrated]:
    """Every chapter's clips in the M4B's (the programme's) time."""
    by_chapter: dict[int, list[Clip]] = {c.index: [] for c in book.chapters}
    for part, cues in cues_by_part(book.parts, book.layout):
        by_chapter[part.chapter] += [
            Clip(cue.text, cue.start, cue.end, _opens(part, k)) for k, cue in enumerate(cues)
        ]
    return [Narrated(c.title, m4b, by_chapter[c.index]) for c in book.chapters]


def _opens(part: Part, sentence: int) -> bool:
    """Whether the chunk's sentence ``sentence`` starts a paragraph."""
    return sentence == 0 and part.boundary in PARAGRAPHS
