"""A book's MP3 and M4B joined from its chapters' segments (``shared.farm.book_join``), on
Postgres and S3: read back with FFmpeg's decoder (PyAV) and mutagen, they say what a single
encode of the same programme says, sample for sample in place, with their chapters where the
chapter list puts them."""

from __future__ import annotations

import json

import av
import mutagen
import mutagen.mp4
import numpy as np
import pytest
from sqlalchemy import select

from api.schemas import JobCreate
from api.services.jobs import submit
from shared.audio.encode import AudioWriter
from shared.audio.presets import Mastering
from shared.audio.programme import lay_out
from shared.farm import book_stitch, chapter_stitch
from shared.farm.leases import RENEW_STITCH_LEASE, Lease
from shared.farm.redo import redo_chapter
from shared.farm.tenants import create_key
from shared.infra.models import Chapter, Job

BOOK = (
    "# One\n\nHello there. This is a test of the farm, and of its book files.\n\n"
    "# Two\n\nThe end is near.\n\n# Three\n\nIt is here at last, and it is a long sentence."
)


@pytest.fixture()
def tenant(burst):
    with burst.farm.sessions() as session:
        tenant, _ = create_key(session, "segments")
    return tenant


def decoded(path) -> np.ndarray:
    with av.open(str(path)) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return pcm / 32768 if pcm.dtype == np.int16 else pcm


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    n = min(len(reference), len(other))
    noise = ((reference[:n] - other[:n]) ** 2).sum()
    return float(10 * np.log10((reference[:n] ** 2).sum() / max(noise, 1e-20)))


def book_files(burst, job_id, folder) -> dict[str, object]:
    """The job's outputs by kind (chapters by number), downloaded."""
    with burst.farm.sessions() as session:
        outputs = session.get(Job, job_id).outputs
    files = {}
    for output in outputs:
        name = output["kind"] + (str(output["chapter"]) if output["kind"] == "chapter" else "")
        path = folder / f"{name}.{output['format']}"
        assert burst.farm.store.download_file(output["key"], path)
        files[name] = path
    return files


def reference(burst, job_id, folder):
    """The programme as the stitch lays it out, in WAV from the chunks (no join), and the
    layout."""
    with burst.farm.sessions() as session:
        job = session.get(Job, job_id)
        titles = session.scalars(
            select(Chapter.title).where(Chapter.job_id == job_id).order_by(Chapter.index)
        ).all()
    parts = chapter_stitch.read_parts(burst.farm, job_id)
    mastering = Mastering.model_validate(job.mastering)
    layout = lay_out(parts, titles, burst.farm.settings.audio, mastering, joined=True)
    lease = Lease(burst.farm, RENEW_STITCH_LEASE, job=job_id)  # not held: never lost
    path = folder / "reference.wav"
    book_stitch._encode_programme(
        burst.farm, lease, job, parts, layout, "wav", 64, None, path, chapter_stitch.StitchCost()
    )
    return decoded(path), layout


def says_the_same(joined, pcm: np.ndarray, fmt: str, folder) -> None:
    """``joined`` decodes to ``pcm``'s length and as close to it as one encode of ``pcm``
    does: off by a single sample, a lossy codec's SNR falls by several dB."""
    single = folder / f"single.{fmt}"
    with AudioWriter(single, fmt) as writer:
        writer.write(pcm.astype(np.float32))
    ours, theirs = decoded(joined), decoded(single)
    # FFmpeg's decoder trims the last frame's padding or not as it does for one encode
    assert len(ours) == len(theirs) and abs(len(ours) - len(pcm)) < 1024
    assert snr_db(pcm, ours) > snr_db(pcm, theirs) - 0.5 > 5


@pytest.mark.parametrize(
    "request_",
    [{}, {"preset": "audiobook"}, {"format": "flac"}, {"format": "opus"}, {"preset": "acx"}],
)
def test_the_books_files_joined_from_segments_say_what_one_encode_says(
    burst, tenant, tmp_path, request_
):
    job = submit(burst.farm, tenant, JobCreate(text=BOOK, **request_), None)
    burst.drain()
    files = book_files(burst, job.id, tmp_path)
    pcm, layout = reference(burst, job.id, tmp_path)
    assert len(pcm) == layout.samples and len(layout.marks) == 3
    m4b = files.get("m4b", files["programme"])  # the audiobook preset's programme is its M4B
    for kind in {"programme", "m4b"} & set(files):
        fmt = files[kind].suffix[1:]
        if fmt == "flac":
            assert np.abs(decoded(files[kind]) - pcm).max() < 1 / 32768 * 1.01  # lossless
        elif fmt != "opus":  # (Opus decodes at 48 kHz: its chapters alone, below)
            says_the_same(files[kind], pcm, fmt, tmp_path)
    # the chapters, as FFmpeg and mutagen read them, start where the chapter list says
    listed = json.loads(files["chapters"].read_text())["chapters"]
    starts = [mark.start / 24000 for mark in layout.marks]
    assert [c["start_s"] for c in listed] == pytest.approx(starts, abs=1e-3)
    with av.open(str(m4b)) as container:
        ffmpeg = [float(c["start"] * c["time_base"]) for c in container.chapters()]
    assert ffmpeg == pytest.approx(starts, abs=1024 / 24000)
    tagged = mutagen.mp4.MP4(m4b).chapters
    assert [c.start for c in tagged] == pytest.approx(starts, abs=1024 / 24000)
    assert [c.title for c in tagged] == ["One", "Two", "Three"]
    # chapters start on the grid, their pauses kept
    assert all(mark.start % 9216 == 0 for mark in layout.marks)
    # and the programme in any format keeps them too: ID3 CHAP frames and a CTOC in the MP3,
    # CHAPTERnnn comments in FLAC and Opus, as FFmpeg and mutagen read them
    programme = files["programme"]
    with av.open(str(programme)) as container:
        ffmpeg = [float(c["start"] * c["time_base"]) for c in container.chapters()]
        names = [c["metadata"].get("title") for c in container.chapters()]
    assert ffmpeg == pytest.approx(starts, abs=1024 / 24000) and names == ["One", "Two", "Three"]
    tags = mutagen.File(programme).tags
    if programme.suffix == ".mp3":
        (toc,) = tags.getall("CTOC")
        chaps = {c.element_id: c for c in tags.getall("CHAP")}
        ordered = [chaps[element] for element in toc.child_element_ids]
        assert [c.start_time / 1000 for c in ordered] == pytest.approx(starts, abs=0.002)
        assert [c.sub_frames["TIT2"].text[0] for c in ordered] == ["One", "Two", "Three"]
    elif programme.suffix in (".flac", ".opus"):
        said = [tags[f"CHAPTER{i:03d}NAME"][0] for i in range(3)]
        assert said == ["One", "Two", "Three"] and "CHAPTER003" not in tags


def test_a_chapter_made_before_segments_has_its_book_encoded_whole(burst, tenant, tmp_path):
    job = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    burst.drain(("generate", "decode", "chapter"))
    with burst.farm.sessions() as session:
        versions = session.scalars(select(Chapter.version).where(Chapter.job_id == job.id)).all()
    burst.farm.store.delete_keys(
        [chapter_stitch.segment_key(job.id, v, 1, "m4b") for v in set(versions)]
    )
    burst.drain()
    files = book_files(burst, job.id, tmp_path)
    pcm, _ = reference(burst, job.id, tmp_path)
    says_the_same(files["m4b"], pcm, "m4b", tmp_path)
    says_the_same(files["programme"], pcm, "mp3", tmp_path)


def test_a_redone_chapter_has_new_segments_and_the_old_ones_go(burst, tenant, tmp_path):
    job = submit(burst.farm, tenant, JobCreate(text=BOOK), None)
    burst.drain()
    exists = {}

    def there(key: str) -> bool:
        return burst.farm.store.download_file(key, tmp_path / "probe")

    for chapter in range(3):
        exists[chapter] = chapter_stitch.segment_key(job.id, 1, chapter, "m4b")
        assert there(exists[chapter])
    redo_chapter(burst.farm, job.id, 1, text="It was a dark and stormy night.")
    burst.drain()
    with burst.farm.sessions() as session:
        assert session.get(Job, job.id).status == "succeeded"
        version = session.get(Chapter, (job.id, 1)).version
    assert version == 2
    assert there(chapter_stitch.segment_key(job.id, 2, 1, "m4b"))
    assert not there(exists[1]) and there(exists[0]) and there(exists[2])
    pcm, _ = reference(burst, job.id, tmp_path)
    files = book_files(burst, job.id, tmp_path)
    says_the_same(files["m4b"], pcm, "m4b", tmp_path)
