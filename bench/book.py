"""A 10-hour book end to end through the native farm, as a new user would make one: submit to
the last file.

    python bench/book.py [--chars 540000] [--chapters 902] [--engine espeak]

Starts the farm as ``make farm-up`` does (api, dispatcher, gpu/cpu/stitch/webhook workers,
beat, Flower, moto's S3 server; the local Postgres with a database of its own and Redis with
a key space of its own) on the espeak-ng engine, submits a book of ``--chars`` characters in
``--chapters`` chapters through the API and polls it every second until it ends. Prints when
each stage began (its chunks generated and decoded, its chapters' files, the book's files, as
the job's ``progress.stage`` says), the wall time from submit to the last file (target 10
minutes), the CPU each process used and the peak RSS of the largest; then reads the files
back: every chapter file listed, the programme's and the M4B's length (mutagen), the M4B's
chapters, the captions and the chapter list.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import mutagen.mp3
import mutagen.mp4
import redis
from farm import REDIS, cpu_seconds, start_farm, stop_farm
from sqlalchemy import text

from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from workers import farm_processes
from workers.bootstrap import ensure_database

DB = "postgresql+psycopg://postgres@127.0.0.1:5432/lyre_bench_book"
SAMPLE = Path(__file__).resolve().parents[1] / "shared" / "samples" / "sample.md"


def book(chars: int, chapters: int) -> str:
    """About ``chars`` characters of the bundled sample's sentences in ``chapters`` chapters,
    their digits shifted at each round so that the text does not repeat exactly."""
    paragraphs = [p for p in SAMPLE.read_text().split("\n\n") if p and not p.startswith("#")]
    sentences = [s for p in paragraphs for s in re.split(r"(?<=[.!?])\s+", p.strip()) if s]
    per_chapter, parts, n = chars / chapters, [], 0
    for chapter in range(chapters):
        heading, said = f"# Chapter {chapter + 1}", []
        size = len(heading) + 4
        while True:  # sentences while the chapter is nearer its share with the next than without
            shift = n // len(sentences) % 10
            digits = str.maketrans("0123456789", "0123456789"[shift:] + "0123456789"[:shift])
            sentence = sentences[n % len(sentences)].translate(digits)
            if said and size + len(sentence) / 2 > per_chapter:
                break
            said.append(sentence)
            size += len(sentence) + 1
            n += 1
        parts += [heading, " ".join(said)]
    return "\n\n".join(parts)


def peak_rss_mb(roots: dict[str, int]) -> dict[str, float]:
    """Each process tree's largest peak RSS (VmHWM) so far."""
    found = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True).stdout
    parents = {int(p): int(pp) for p, pp in (line.split() for line in found.splitlines())}

    def hwm(pid: int) -> float:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return 0.0
        line = next((x for x in status.splitlines() if x.startswith("VmHWM:")), "VmHWM: 0 kB")
        return int(line.split()[1]) / 1024

    def tree(pid: int) -> float:
        return max([hwm(pid), *(tree(c) for c, p in parents.items() if p == pid)])

    return {name: tree(pid) for name, pid in roots.items()}


def follow(api: str, headers: dict[str, str], body: dict, roots: dict[str, int]) -> tuple:
    """Submit and poll every second; the job at its end, when each stage began, the peak RSS."""
    started = time.perf_counter()
    answer = httpx.post(f"{api}/v1/jobs", json=body, headers=headers, timeout=300)
    answer.raise_for_status()
    job = answer.json()
    print(f"submitted in {time.perf_counter() - started:.1f} s: {job['progress']}", flush=True)
    stages: dict[str, float] = {}
    peaks: dict[str, float] = {}
    while True:
        stage = job["progress"]["stage"]
        stages.setdefault(stage, time.perf_counter() - started)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job, stages, peaks
        time.sleep(1.0)
        job = httpx.get(f"{api}/v1/jobs/{job['id']}", headers=headers, timeout=60).json()
        for name, mb in peak_rss_mb(roots).items():
            peaks[name] = max(peaks.get(name, 0.0), mb)
        done = sum(c["status"] == "done" for c in job["chapters"])
        if int(time.perf_counter() - started) % 30 == 0:
            progress = job["progress"]
            print(
                f"  {time.perf_counter() - started:5.0f} s: {progress['stage']}, chunks "
                f"{progress['chunks_done']}/{progress['chunks_total']}, chapters {done}/"
                f"{len(job['chapters'])}",
                flush=True,
            )


def read_back(job: dict, chapters: int) -> None:
    """The files, as readers that are not the writer see them."""
    by_kind: dict[str, list[dict]] = {}
    for output in job["outputs"]:
        by_kind.setdefault(output["kind"], []).append(output)
    programme = httpx.get(by_kind["programme"][0]["url"], timeout=300).content
    m4b = httpx.get(by_kind["m4b"][0]["url"], timeout=300).content
    listed = json.loads(httpx.get(by_kind["chapters"][0]["url"], timeout=60).content)
    mp3_s = mutagen.mp3.MP3(io.BytesIO(programme)).info.length
    tagged = mutagen.mp4.MP4(io.BytesIO(m4b))
    captions = {o["format"]: httpx.get(o["url"], timeout=60).text for o in by_kind["captions"]}
    print(
        f"files: {len(by_kind.get('chapter', []))} chapter files (of {chapters}); programme "
        f"{len(programme) / 2**20:.0f} MiB, {mp3_s / 3600:.2f} h (mutagen); M4B "
        f"{len(m4b) / 2**20:.0f} MiB, {tagged.info.length / 3600:.2f} h, "
        f"{len(tagged.chapters or [])} chapters (mutagen); chapter list "
        f"{len(listed['chapters'])} chapters, {listed['duration_s'] / 3600:.2f} h; captions "
        + ", ".join(f"{fmt} {text.count(' --> ')} cues" for fmt, text in captions.items())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=540_000)
    parser.add_argument("--chapters", type=int, default=902)
    parser.add_argument("--engine", default="espeak")
    args = parser.parse_args()
    if args.chars < 1000 or not 1 <= args.chapters <= args.chars // 100:
        parser.error("--chars must be at least 1000, --chapters 1 to one per 100 characters")
    text_ = book(args.chars, args.chapters)
    ensure_database(DB)
    redis.Redis.from_url(REDIS).flushdb()
    api_port, flower_port, s3_port = (farm_processes.free_port() for _ in range(3))
    with tempfile.TemporaryDirectory(prefix="lyre-bench-book-") as tmp:
        children: dict[str, subprocess.Popen[bytes]] = {}
        try:
            settings = {"LYRE_ENGINE": args.engine, "LYRE_DATABASE__URL": DB}
            start_farm(Path(tmp), api_port, flower_port, s3_port, children, settings)
            with session_scope(DB) as session:
                session.execute(text("TRUNCATE tenant, job, webhook_delivery CASCADE"))
                _, key = create_key(session, "bench-book")
            roots = {name: child.pid for name, child in children.items()}
            before = cpu_seconds(roots)
            api = f"http://127.0.0.1:{api_port}"
            body = {"text": text_, "format": "mp3", "title": "A long book"}
            job, stages, peaks = follow(api, {"Authorization": f"Bearer {key}"}, body, roots)
            after = cpu_seconds(roots)
            if job["status"] == "succeeded":
                read_back(job, args.chapters)
            else:
                print(f"the job {job['status']}: {job.get('error')}")
                for log in Path(tmp).glob("*.log"):  # the farm's logs, kept to read
                    shutil.copy(log, Path(tempfile.gettempdir()) / f"lyre-bench-book-{log.name}")
        finally:
            stop_farm(children)
    wall = stages.get("finished", 0.0)
    progress = job["progress"]
    print(
        f"{len(text_):,} characters, {args.chapters} chapters, {progress['chunks_total']} "
        f"chunks, {progress['audio_seconds'] / 3600:.2f} h of audio ({args.engine}): job "
        f"{job['status']}"
    )
    print("stages began at: " + ", ".join(f"{s} {t:.0f} s" for s, t in stages.items()))
    print(f"submit to the last file: {wall:.0f} s (target 600)")
    used = {name: after[name] - before[name] for name in after}
    print("CPU seconds: " + ", ".join(f"{n} {s:.0f}" for n, s in used.items() if s >= 1))
    print("peak RSS, MB: " + ", ".join(f"{n} {mb:.0f}" for n, mb in peaks.items()))


if __name__ == "__main__":
    main()
