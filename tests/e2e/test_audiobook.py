"""``lyre synth`` on an EPUB as a publisher runs it (in this process: the command's own process
is tests/e2e/test_synth.py's): every file read back by a reader that is not its writer (FFmpeg,
through PyAV, writes them): mutagen for chapters, tags and cover, libsndfile (mpg123) for the
samples ACX's figures are recomputed from, webvtt-py and srt for the captions."""

from __future__ import annotations

import contextlib
import io
import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import av
import mutagen.mp3
import mutagen.mp4
import numpy as np
import pytest
import soundfile
import srt
import webvtt

from shared.audio import SAMPLE_RATE
from shared.audio.segments import chapter_start
from tests.books import Chapter, make_epub, three_chapter_book
from tests.read_along import covered, overlays

pytestmark = pytest.mark.slow

TITLES = ["Chapter One: The Harbour", "Chapter Two: The Storm", "Chapter Three: The Lamp"]
PAUSE_S = 2.0  # the default pause before a chapter


def jpeg() -> bytes:
    """A small real JPEG, for the cover."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mjpeg") as out:
        stream = out.add_stream("mjpeg")
        stream.width = stream.height = 32
        stream.pix_fmt = "yuvj420p"
        picture = np.zeros((32, 32, 3), np.uint8)
        picture[:, :, 2] = 200
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuvj420p")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


@dataclass
class Ran:
    stdout: str
    stderr: str


def lyre_synth(tmp_path: Path, *args: str, work: Path | None = None) -> Ran:
    """``lyre synth`` with ``args``, in this process (tests/e2e/test_synth.py runs the command
    itself), from another folder than the checkout, as a user runs it."""
    from cli.main import main
    from shared.infra.settings import get_settings

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        patch.setenv("LYRE_ENGINE", "espeak")
        patch.setenv("LYRE_WORK_DIR", str(work or tmp_path / "work"))
        get_settings.cache_clear()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["synth", *args])
        finally:
            get_settings.cache_clear()
    assert code == 0, err.getvalue()
    return Ran(out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def audiobook(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audiobook")
    cover = jpeg()
    book = make_epub(tmp / "book.epub", three_chapter_book(), cover=cover, footnotes=True)
    lyre_synth(
        tmp, str(book), "-o", str(tmp / "book.m4b"), "--chapters", "--captions", "--read-along"
    )
    return tmp, cover


def test_the_m4b_has_the_books_chapters_at_their_times_tags_and_cover(audiobook):
    tmp, cover = audiobook
    m4b = mutagen.mp4.MP4(tmp / "book.m4b")
    assert [c.title for c in m4b.chapters] == TITLES
    assert m4b.tags["©nam"] == ["A Small Book"] and m4b.tags["©ART"] == ["Ada Writer"]
    (art,) = m4b.tags["covr"]
    assert art.imageformat == mutagen.mp4.MP4Cover.FORMAT_JPEG and bytes(art) == cover
    # each chapter starts where the chapters before it, and a pause before each, have played
    lengths = [  # libsndfile's mpg123 reads LAME's gapless header: the exact samples
        soundfile.info(tmp / f"book-chapters/chapter-00{n}.mp3").duration for n in (1, 2, 3)
    ]
    # (on the grid of both codecs' frames the book's files are joined on, shared.audio.segments)
    expected = [0.0]
    for length in lengths[:2]:
        at, content, pause = (round(s * SAMPLE_RATE) for s in (expected[-1], length, PAUSE_S))
        expected.append(chapter_start(at, content, pause) / SAMPLE_RATE)
    assert [c.start for c in m4b.chapters] == pytest.approx(expected, abs=0.06)
    listed = json.loads((tmp / "book-chapters/chapters.json").read_text())["chapters"]
    assert [c["title"] for c in listed] == TITLES
    assert [c["start_s"] for c in listed] == pytest.approx(
        [c.start for c in m4b.chapters], abs=0.01
    )
    assert m4b.info.length == pytest.approx(expected[2] + lengths[2], abs=0.1)
    assert [
        mutagen.mp3.MP3(tmp / f"book-chapters/chapter-00{n}.mp3").info.length for n in (1, 2, 3)
    ] == pytest.approx(lengths, abs=0.1)


def test_the_read_along_book_pairs_every_sentence_with_its_clip(audiobook):
    """Every ``par`` of the overlays points at an id of its page and a clip inside its
    chapter's audio, in reading order; the captions' sentences are all there."""
    tmp, _ = audiobook
    read, _ = overlays(tmp / "book.epub")
    assert covered(tmp / "book.vtt", read) >= 0.99
    assert read[0] == TITLES[0] and not any("footnote" in text.casefold() for text in read)


def test_each_chapter_file_is_tagged_for_an_album(audiobook):
    tmp, _ = audiobook
    for number, title in enumerate(TITLES, 1):
        tags = mutagen.mp3.MP3(tmp / f"book-chapters/chapter-00{number}.mp3").tags
        assert str(tags["TIT2"]) == title and str(tags["TALB"]) == "A Small Book"
        assert str(tags["TRCK"]) == f"{number}/3" and str(tags["TPE1"]) == "Ada Writer"


def test_captions_parse_and_follow_the_programme(audiobook):
    tmp, _ = audiobook
    vtt = webvtt.read(str(tmp / "book.vtt"))
    subs = list(srt.parse((tmp / "book.srt").read_text()))
    assert len(vtt) == len(subs) > 10
    length = mutagen.mp4.MP4(tmp / "book.m4b").info.length
    starts = [seconds(cue.start) for cue in vtt]
    assert starts == sorted(starts) and seconds(vtt[-1].end) <= length + 0.05
    assert all(seconds(c.start) < seconds(c.end) for c in vtt)
    assert [s.start.total_seconds() for s in subs] == pytest.approx(starts, abs=0.001)
    assert [s.content for s in subs] == [cue.text for cue in vtt]
    assert vtt[0].text == TITLES[0] and "The harbour was quiet" in vtt[1].text
    assert not any("footnote" in cue.text for cue in vtt)  # what is not read is not shown


def seconds(timestamp: str) -> float:
    """A WebVTT time in seconds (webvtt-py's own ``start_in_seconds`` drops the fraction)."""
    hours, minutes, rest = timestamp.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


def onsets(path: Path, quiet_s: float = 0.25) -> list[float]:
    """Where speech starts after at least ``quiet_s`` of silence, from the samples."""
    pcm, rate = soundfile.read(path)
    window = rate // 100
    energy = (pcm[: len(pcm) // window * window].reshape(-1, window) ** 2).mean(axis=1)
    loud = energy > 10 ** (-45 / 10)
    found, run = [], math.inf
    for i, is_loud in enumerate(loud):
        if is_loud and run * 0.01 >= quiet_s:
            found.append(i * 0.01)
        run = 0 if is_loud else run + 1
    return found


@pytest.mark.parametrize("max_chars", [40, 400])
def test_each_cue_starts_within_0_3_s_of_its_sentences_onset(tmp_path, max_chars):
    """Short sentences, each a chunk at 40 characters (its onset is where the chunk was
    placed) and several to a chunk at 400 (placed inside the chunk); onsets are found in the
    decoded audio after each pause."""
    said = [
        "The lamp was lit at dusk.",
        "Waves broke on the rocks.",
        "A ship passed to the east.",
        "Gulls cried over the bay.",
        "The keeper wrote it down.",
        "Night fell over the town.",
    ]
    book = make_epub(tmp_path / "s.epub", [Chapter("One", said[:3]), Chapter("Two", said[3:])])
    out = tmp_path / "s.wav"
    lyre_synth(tmp_path, str(book), "-o", str(out), "--captions", "--max-chars", str(max_chars))
    cues = [c for c in webvtt.read(str(tmp_path / "s.vtt")) if c.text in said]
    assert [c.text for c in cues] == said
    heard = onsets(out)
    for cue in cues:
        nearest = min(heard, key=lambda t: abs(t - seconds(cue.start)))
        assert abs(nearest - seconds(cue.start)) <= 0.3, (cue.text, cue.start, nearest)


def acx_figures(path: Path) -> dict[str, float]:
    """ACX's checks recomputed from the samples libsndfile decodes."""
    pcm, rate = soundfile.read(path)
    window = rate // 100
    energy = (pcm[: len(pcm) // window * window].reshape(-1, window) ** 2).mean(axis=1)
    halves = energy[: len(energy) // 50 * 50].reshape(-1, 50).mean(axis=1)
    loud = np.flatnonzero(energy > 10 ** (-50 / 10))
    return {
        "rms": 10 * math.log10((pcm**2).mean()),
        "peak": 20 * math.log10(np.abs(pcm).max()),
        "floor": 10 * math.log10(max(halves.min(), 1e-20)),
        "head": loud[0] * 0.01,
        "tail": len(pcm) / rate - (loud[-1] + 1) * 0.01,
        "rate": rate,
    }


def test_the_acx_preset_makes_chapter_files_that_pass_acx(tmp_path):
    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    proc = lyre_synth(tmp_path, str(book), "-o", str(tmp_path / "b.mp3"), "--preset", "acx")
    assert proc.stdout.count("passes ACX") == 3, proc.stdout
    assert [c.title for c in mutagen.mp4.MP4(tmp_path / "b.m4b").chapters] == TITLES
    for number in (1, 2, 3):
        path = tmp_path / f"b-chapters/chapter-00{number}.mp3"
        figures = acx_figures(path)
        assert -23 <= figures["rms"] <= -18 and figures["peak"] <= -3
        assert figures["floor"] <= -60 and figures["floor"] > -100  # room tone, not silence
        assert 0.5 <= figures["head"] <= 1.0 and 1.0 <= figures["tail"] <= 5.0
        info = mutagen.mp3.MP3(path).info
        assert (info.sample_rate, info.bitrate) == (44100, 192000) == (figures["rate"], 192000)
        assert info.bitrate_mode == mutagen.mp3.BitrateMode.CBR and info.length <= 120 * 60


def test_an_interrupted_run_resumes_without_redoing_finished_chunks(tmp_path):
    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    work, out = tmp_path / "work", tmp_path / "b.mp3"
    lyre_synth(tmp_path, str(book), "-o", str(out), work=work)
    first = out.read_bytes()
    chunk_files = {p: p.read_bytes() for p in work.glob("jobs/*/chunks/*.f32")}
    with sqlite3.connect(work / "lyre.db") as db:  # as if the run had stopped in chapter 3
        db.execute("SELECT id FROM job").fetchone()
        db.execute("UPDATE job SET status = 'running', chunks_done = chunks_done - 3")
        db.execute("UPDATE chapter SET status = 'waiting' WHERE \"index\" = 2")
        db.execute(
            "UPDATE chunk SET status = 'pending' WHERE \"index\" IN "
            '(SELECT "index" FROM chunk WHERE chapter = 2 ORDER BY "index" DESC LIMIT 3)'
        )
        before = dict(db.execute('SELECT "index", attempts FROM chunk'))
    out.unlink()
    proc = lyre_synth(tmp_path, str(book), "-o", str(out), work=work)
    assert "resumed: 8 chunks were already done" in proc.stderr
    with sqlite3.connect(work / "lyre.db") as db:
        after = dict(db.execute('SELECT "index", attempts FROM chunk'))
        pending = [i for (i,) in db.execute('SELECT "index" FROM chunk WHERE chapter = 2')]
    redone = {i for i in after if after[i] != before[i]}
    assert redone == set(sorted(pending)[-3:])  # only the three unfinished chunks ran again
    kept = {p: p.read_bytes() for p in chunk_files if int(p.stem) not in redone}
    assert len(kept) == 8 and all(kept[p] == chunk_files[p] for p in kept)
    # the chunks made again are the same samples (seeded espeak-ng), so the book is the same
    assert all(p.read_bytes() == chunk_files[p] for p in chunk_files)
    assert out.read_bytes() == first


def test_a_lexicon_changes_what_is_said_not_what_is_shown(tmp_path):
    book = make_epub(tmp_path / "b.epub", [Chapter("One", ["Mara met Siobhan at the harbour."])])
    lexicon = tmp_path / "lexicon.json"
    lexicon.write_text(json.dumps({"siobhan": "shiv-awn"}))
    out, work = tmp_path / "b.wav", tmp_path / "work"
    lyre_synth(
        tmp_path, str(book), "-o", str(out), "--captions", "--lexicon", str(lexicon), work=work
    )
    with sqlite3.connect(work / "lyre.db") as db:
        said = [t for (t,) in db.execute("SELECT text FROM chunk")]
        (applied,) = db.execute("SELECT lexicon FROM job").fetchone()
    assert any("Shiv-awn" in t for t in said) and not any("Siobhan" in t for t in said)
    assert json.loads(applied)["applied"] == {"siobhan": 1}
    assert "Mara met Siobhan at the harbour." in (tmp_path / "b.vtt").read_text()


@pytest.mark.parametrize(("preset", "lufs"), [("podcast", -16.0), ("audiobook", -19.0)])
def test_loudness_presets_reach_their_targets(tmp_path, preset, lufs):
    """Measured by pyloudnorm (BS.1770) on the chapter files libsndfile decodes: each chapter
    is brought to the preset's target on its own."""
    import pyloudnorm

    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    out = tmp_path / ("b.mp3" if preset == "podcast" else "b.m4b")
    lyre_synth(tmp_path, str(book), "-o", str(out), "--preset", preset, "--chapters")
    for number in (1, 2, 3):
        pcm, rate = soundfile.read(tmp_path / f"b-chapters/chapter-00{number}.mp3")
        loudness = pyloudnorm.Meter(rate).integrated_loudness(pcm)
        assert loudness == pytest.approx(lufs, abs=1.0), (number, loudness)
