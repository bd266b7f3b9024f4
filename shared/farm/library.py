"""A finished job as a library server shelves a book: ``Author/Title/`` holding the audio, the
cover, the read-along EPUB where one was made, and the sidecars library servers read beside the
files' own tags (audiobookshelf's ``metadata.json``, an OPF, ``desc.txt`` and ``reader.txt``).

One layout, two ways out: a zip streamed from the object store (``GET
/v1/jobs/{id}/library.zip``: each file read a piece at a time, the archive never held whole) and
a folder (``lyre synth --library DIR``).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import av

from shared.audio import SAMPLE_RATE
from shared.farm.context import FarmContext
from shared.farm.outputs import book_tags, narrator
from shared.infra.models import Job
from shared.infra.storage import ObjectStore

# The formats whose files carry the book's chapters (WAV has none: the M4B goes instead)
CHAPTERED = ("m4b", "mp3", "flac", "opus")
NOT_IN_NAMES = re.compile(r'[\x00-\x1f/\\:*?"<>|]+')
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Shelved:
    """A file of the book's folder: an object of the store, or bytes made here."""

    path: str  # in the library: Author/Title/name
    key: str | None = None
    data: bytes | None = None


def folder_name(text: str | None, otherwise: str) -> str:
    """``text`` as one folder's name on any file system: no separators or reserved
    characters, no leading or trailing dots and spaces."""
    name = " ".join(NOT_IN_NAMES.sub(" ", text or "").split())
    return name[:120].strip(" .") or otherwise


def shelf_title(job: Job) -> str:
    """The book's title, or a name for an untitled job."""
    return job.title or f"Lyre {str(job.id)[:8]}"


def shelf(job: Job, store: ObjectStore) -> list[Shelved]:
    """What goes on the shelf for ``job`` (succeeded), in the order a listing shows it."""
    author = folder_name(job.author, "Unknown Author")
    title = folder_name(shelf_title(job), "Untitled")
    at = f"{author}/{title}/"
    outputs = {o["kind"]: o for o in job.outputs if o["kind"] != "chapter"}
    audio = outputs["programme"]
    if audio["format"] not in CHAPTERED:
        audio = outputs["m4b"]
    files = [Shelved(f"{at}{title}.{audio['format']}", key=audio["key"])]
    if job.cover_key and job.cover_key.endswith((".jpg", ".jpeg")):
        files.append(Shelved(f"{at}cover.jpg", key=job.cover_key))
    elif job.cover_key:  # a PNG, GIF or WebP cover, as the JPEG the layout names
        files.append(Shelved(f"{at}cover.jpg", data=as_jpeg(store.get_bytes(job.cover_key))))
    if "read_along" in outputs:
        files.append(Shelved(f"{at}{title}.epub", key=outputs["read_along"]["key"]))
    about = sidecar(job)
    files.append(Shelved(f"{at}metadata.json", data=json.dumps(about, indent=2).encode()))
    files.append(Shelved(f"{at}metadata.opf", data=opf(about, f"urn:uuid:{job.id}")))
    if about["description"]:
        files.append(Shelved(f"{at}desc.txt", data=about["description"].encode()))
    files.append(Shelved(f"{at}reader.txt", data=about["narrators"][0].encode()))
    return files


def as_jpeg(image: bytes) -> bytes:
    """An image (PNG, GIF, WebP) as a JPEG of its size, through FFmpeg (PyAV)."""
    with av.open(io.BytesIO(image), "r") as source:
        frame = next(source.decode(video=0)).reformat(format="yuvj444p")
    out = io.BytesIO()
    with av.open(out, "w", format="mjpeg") as target:
        stream = target.add_stream("mjpeg")
        stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuvj444p"
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            target.mux(packet)
    return out.getvalue()


def sidecar(job: Job) -> dict[str, Any]:
    """audiobookshelf's ``metadata.json`` (its flat form): the book's title, author,
    narrator (the voice), description and publisher (the job's metadata, else the EPUB's),
    language and chapters."""
    chapters = [o for o in job.outputs if o["kind"] == "chapter"]
    ends = [c["start_s"] for c in chapters[1:]] + [(job.output_samples or 0) / SAMPLE_RATE]
    tags = book_tags(job)
    return {
        "title": shelf_title(job),
        "subtitle": None,
        "authors": [job.author] if job.author else [],
        "narrators": [narrator(job)],
        "series": [],
        "genres": ["Audiobook"],
        "publishedYear": None,
        "publisher": tags["publisher"] or None,
        "description": tags["comment"] or None,
        "isbn": None,
        "asin": None,
        "language": job.language,
        "explicit": False,
        "abridged": False,
        "tags": [],
        "chapters": [
            {"id": n, "start": c["start_s"], "end": round(end, 3), "title": c["title"]}
            for n, (c, end) in enumerate(zip(chapters, ends, strict=True))
        ],
    }


def opf(about: dict[str, Any], identifier: str) -> bytes:
    """The same as an OPF package's metadata, as Calibre and audiobookshelf read it (roles
    as EPUB 2 writes them: ``aut`` the author, ``nrt`` the narrator)."""
    lines = [f'<dc:identifier id="id">{escape(identifier)}</dc:identifier>']
    lines.append(f"<dc:title>{escape(about['title'])}</dc:title>")
    lines += [f'<dc:creator opf:role="aut">{escape(a)}</dc:creator>' for a in about["authors"]]
    lines += [f'<dc:creator opf:role="nrt">{escape(n)}</dc:creator>' for n in about["narrators"]]
    for name in ("description", "publisher", "language"):
        if about[name]:
            lines.append(f"<dc:{name}>{escape(about[name])}</dc:{name}>")
    lines += [f"<dc:subject>{escape(g)}</dc:subject>" for g in about["genres"]]
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://www.idpf.org/2007/opf" '
        'version="2.0" unique-identifier="id">\n  <metadata xmlns:dc="http://purl.org/dc/'
        'elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">\n    '
        + "\n    ".join(lines)
        + "\n  </metadata>\n</package>\n"
    ).encode()


def write_folder(farm: FarmContext, job: Job, root: Path) -> Path:
    """The book's folder under ``root``; where it is."""
    files = shelf(job, farm.store)
    for item in files:
        path = root / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if item.key is not None:
            farm.store.download_file(item.key, path)
        else:
            path.write_bytes(item.data or b"")
    return (root / files[0].path).parent


class _Pipe:
    """What the zip writes, handed on as it is written (the archive is never seekable)."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.written = 0

    def write(self, data: bytes) -> int:
        self.pieces.append(bytes(data))
        self.written += len(data)
        return len(data)

    def tell(self) -> int:
        return self.written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> Iterator[bytes]:
        pieces, self.pieces = self.pieces, []
        yield from pieces


def zip_pieces(farm: FarmContext, job: Job) -> Iterator[bytes]:
    """The book's folder as a zip, a piece at a time: files stored as they are (audio and
    images are compressed already), each object read from the store as it is written."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_STORED) as archive:
        for item in shelf(job, farm.store):
            info = zipfile.ZipInfo(item.path, ZIP_TIME)
            if item.key is None:
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, item.data or b"")
                yield from pipe.take()
                continue
            with archive.open(info, "w", force_zip64=True) as member:
                for piece in farm.store.read_pieces(item.key):
                    member.write(piece)
                    yield from pipe.take()
            yield from pipe.take()
    yield from pipe.take()
