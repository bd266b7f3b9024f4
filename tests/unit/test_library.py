"""The library's folder (``shared.farm.library``): names any file system takes, and the zip
streamed a piece at a time, never the archive whole."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np

from shared.farm.library import folder_name, zip_pieces
from shared.infra.models import Job
from shared.infra.storage import PIECE, LocalStore


def test_a_folder_name_keeps_no_separator_or_reserved_character():
    assert folder_name('A/B\\C: "D"? <E>|*', "x") == "A B C D E"
    assert folder_name("  ..Hidden.. ", "x") == "Hidden"
    assert folder_name(None, "Unknown Author") == folder_name("/:", "Unknown Author")
    assert len(folder_name("w" * 500, "x")) == 120


def test_the_zip_is_handed_on_a_piece_at_a_time(tmp_path):
    store = LocalStore(tmp_path)
    audio = np.random.default_rng(1).integers(0, 256, 9 * PIECE + 123, np.uint8).tobytes()
    store.put_bytes("jobs/j/v1/book.m4b", audio)
    png = (Path(__file__).parents[1] / "fixtures/epubs/src/cover.png").read_bytes()
    store.put_bytes("jobs/j/cover.png", png)
    job = Job(
        id=uuid.uuid4(),
        title="Harbour Lights",
        author="Ada Writer",
        voice="leo",
        language="en",
        cover_key="jobs/j/cover.png",
        output_samples=24000 * 60,
        metadata_={"description": "<p>Ships.</p>"},
        outputs=[
            {"kind": "programme", "format": "m4b", "key": "jobs/j/v1/book.m4b"},
            {"kind": "m4b", "format": "m4b", "key": "jobs/j/v1/book.m4b"},
            {"kind": "chapter", "format": "mp3", "key": "c1", "title": "One", "start_s": 0.0},
            {"kind": "chapter", "format": "mp3", "key": "c2", "title": "Two", "start_s": 31.5},
        ],
    )
    pieces = list(zip_pieces(SimpleNamespace(store=store), job))  # type: ignore[arg-type]
    assert max(map(len, pieces)) <= PIECE + 4096  # a piece of the object and a header at most
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    at = "Ada Writer/Harbour Lights/"
    assert archive.namelist() == [
        f"{at}{name}"
        for name in (
            "Harbour Lights.m4b",
            "cover.jpg",
            "metadata.json",
            "metadata.opf",
            "desc.txt",
            "reader.txt",
        )
    ]
    assert archive.read(f"{at}Harbour Lights.m4b") == audio and archive.testzip() is None
    with av.open(io.BytesIO(archive.read(f"{at}cover.jpg"))) as cover:  # the PNG, as a JPEG
        frame = next(cover.decode(video=0))
        assert cover.streams.video[0].codec_context.name == "mjpeg"
        assert (frame.width, frame.height) == (6, 8)
    about = json.loads(archive.read(f"{at}metadata.json"))
    assert about["chapters"] == [
        {"id": 0, "start": 0.0, "end": 31.5, "title": "One"},
        {"id": 1, "start": 31.5, "end": 60.0, "title": "Two"},
    ]
    assert (about["narrators"], about["description"]) == (["Leo (Lyre)"], "Ships.")
