"""The checks on every chunk, proved through the real farm with faults on demand.

    python bench/verify.py [--rate 0.5] [--voices tara,leo,zoe,dan]
    python bench/verify.py --sweep

``--sweep`` runs no farm: espeak-ng's eight voices say 249 texts (the test set's sentences,
them again as paragraphs of six, the sample book in 400-character chunks) in this process,
healthy and without their longest sentence (half their words, for one sentence); it prints the
healthy takes the checks fail (false alarms) and the skipped takes they catch.

Starts the farm as ``make farm-up`` does (bench/farm.py's processes, local Postgres and Redis,
moto's S3) three times, and runs one book through the API each time, once in each voice (a job
per voice, at once):

1. espeak-ng with ``faults.rate`` of first takes spoiled (every kind in turn, by seed);
2. the simulated engine, spoiled alike (its steps at 1 ms: only its lengths matter here);
3. espeak-ng with no fault, the baseline for the time the retakes cost.

From the chunks' rows it prints, per engine and fault kind: the first takes spoiled and how
many the checks caught (target: 99 % or more), the fault-free first takes they failed anyway
(false alarms; target: 1 % or fewer), the chunks left suspect; the extra work the retakes
cost: takes generated (GPU) and decoded (CPU) per chunk, and the stages' seconds against the
fault-free run; and, measured in this process on the book's espeak-ng takes, the checks' own
CPU cost per audio hour.
Which takes were spoiled is worked out as the engine did: from each chunk's seed
(``shared.checks.faults.fault_for``).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import redis
from farm import DB, REDIS, start_farm, stop_farm  # bench/farm.py, beside this file
from sqlalchemy import select, text

from shared.audio import SAMPLE_RATE
from shared.checks.audio import check_audio
from shared.checks.faults import fault_for
from shared.checks.speech import check_speech
from shared.farm.checked import takes_made
from shared.farm.seeds import chunk_seed
from shared.farm.tenants import create_key
from shared.infra.checks_settings import FAULT_KINDS, ChecksSettings, FaultSettings
from shared.infra.db import session_scope
from shared.infra.models import Chunk
from shared.speech.engine import Speech, SpeechRequest
from shared.speech.espeak import EspeakEngine
from workers import farm_processes
from workers.bootstrap import ensure_database

ROOT = Path(__file__).resolve().parent.parent
SILENCE_DBFS = -50.0


def test_sentences() -> list[str]:
    """The test set's 206 sentences as written (numbers, dates, money, units, abbreviations)."""
    rows = (ROOT / "tests" / "fixtures" / "say" / "sentences.tsv").read_text().splitlines()
    return [r.split("\t")[2] for r in rows if r and not r.startswith("#") and "\t" in r][1:]


def paragraphs() -> list[str]:
    written = test_sentences()
    return [" ".join(written[i : i + 6]) for i in range(0, len(written), 6)]


def book() -> str:
    """A book of varied prose and figures: the sample book, and the test set's sentences as
    paragraphs of six."""
    sample = (ROOT / "shared" / "samples" / "sample.md").read_text()
    return sample + "\n\n# Figures\n\n" + "\n\n".join(paragraphs())


def run_book(engine: str, rate: float, words: str, voices: list[str], seed: int) -> dict:
    """Start a farm with ``engine`` spoiling ``rate`` of first takes, run the book once in
    each voice, stop it; the jobs' JSON and their chunks' rows."""
    settings = {
        "LYRE_ENGINE": engine,
        "LYRE_FAULTS__RATE": str(rate),
        "LYRE_SIMULATED__STEP_MS": "1",
    }
    ensure_database(DB)
    redis.Redis.from_url(REDIS).flushdb()
    api_port, flower_port, s3_port = (farm_processes.free_port() for _ in range(3))
    children: dict[str, subprocess.Popen[bytes]] = {}
    with tempfile.TemporaryDirectory(prefix="lyre-bench-verify-") as tmp:
        try:
            start_farm(Path(tmp), api_port, flower_port, s3_port, children, settings)
            with session_scope(DB) as session:
                session.execute(text("TRUNCATE tenant, job, webhook_delivery CASCADE"))
                _, key = create_key(session, "verify")
            api, headers = f"http://127.0.0.1:{api_port}", {"Authorization": f"Bearer {key}"}
            started = time.perf_counter()
            jobs = [
                httpx.post(
                    f"{api}/v1/jobs",
                    json={"text": words, "format": "mp3", "seed": seed, "voice": voice},
                    headers=headers,
                    timeout=120,
                ).json()
                for voice in voices
            ]
            while any(job["status"] not in ("succeeded", "failed", "cancelled") for job in jobs):
                time.sleep(0.5)
                jobs = [
                    httpx.get(f"{api}/v1/jobs/{job['id']}", headers=headers, timeout=30).json()
                    for job in jobs
                ]
            wall = time.perf_counter() - started
            with session_scope(DB) as session:
                rows = session.execute(
                    select(Chunk.job_id, Chunk.index, Chunk.takes, Chunk.suspect).add_columns(
                        Chunk.generate_s, Chunk.decode_s, Chunk.samples
                    )
                ).all()
        finally:
            stop_farm(children)
    return {"jobs": jobs, "rows": rows, "wall": wall, "rate": rate, "seed": seed}


def tally(name: str, run: dict) -> None:
    """Caught faults and false alarms, per fault kind."""
    faults = FaultSettings(rate=run["rate"], kinds=list(FAULT_KINDS))
    spoiled: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    clean = alarms = 0
    for row in run["rows"]:
        kind = fault_for(faults, chunk_seed(row.job_id, row.index, run["seed"]), 0)
        failed = any(t["reasons"] for t in row.takes or [] if t["take"] == 0)
        if kind is None:
            clean += 1
            alarms += failed
        else:
            spoiled[kind] += 1
            caught[kind] += failed
    total = sum(spoiled.values())
    kinds = ", ".join(f"{k} {caught[k]}/{spoiled[k]}" for k in FAULT_KINDS if spoiled[k])
    share = 100 * sum(caught.values()) / total if total else float("nan")
    statuses = "/".join(sorted({job["status"] for job in run["jobs"]}))
    print(
        f"{name}: {len(run['jobs'])} jobs {statuses}, {len(run['rows'])} chunks in "
        f"{run['wall']:.0f} s; "
        f"spoiled first takes caught {sum(caught.values())}/{total} ({share:.1f} %: {kinds}); "
        f"false alarms {alarms}/{clean} ({100 * alarms / max(clean, 1):.1f} %); "
        f"suspect {sum(1 for r in run['rows'] if r.suspect)}"
    )


def extra_work(name: str, run: dict, clean: dict) -> None:
    """Takes generated and decoded per chunk, and the stages' seconds against ``clean``."""
    rows = run["rows"]
    made = sum(takes_made(r.takes) for r in rows) / len(rows)
    decoded = sum(sum(t["stage"] == "decode" for t in r.takes) for r in rows) / len(rows)
    gpu, cpu = (sum(getattr(r, f) or 0 for r in rows) for f in ("generate_s", "decode_s"))
    gpu0, cpu0 = (
        sum(getattr(r, f) or 0 for r in clean["rows"]) for f in ("generate_s", "decode_s")
    )
    print(
        f"{name}: {made:.3f} takes generated and {decoded:.3f} decoded per chunk (the GPU's and "
        f"the CPU's extra work: +{100 * (made - 1):.0f} %, +{100 * (decoded - 1):.0f} %); "
        f"stage seconds against no fault: GPU {gpu:.1f} s / {gpu0:.1f} s, CPU {cpu:.1f} s / "
        f"{cpu0:.1f} s, for {sum(r.samples or 0 for r in rows) / SAMPLE_RATE / 3600:.2f} h of audio"
    )


def _stage_seconds(rows: list) -> tuple[float, float]:
    return sum(r.generate_s or 0 for r in rows), sum(r.decode_s or 0 for r in rows)


def check_cost(words: str, takes: int = 40) -> tuple[float, float]:
    """CPU seconds the checks take per audio hour, on espeak-ng's takes of the book's first
    chunks: those at generation, and those at decode."""
    from shared.farm.intake import take_in_chapter
    from shared.infra.settings import Settings
    from shared.text.lexicon import Lexicon
    from shared.text.verbalizer import verbalize

    spans = take_in_chapter(Settings(), words, "").spans[:takes]
    said = [verbalize(span.text, Lexicon({})) for span in spans]
    engine, checks = EspeakEngine(), ChecksSettings()
    speech = [
        asyncio.run(engine.generate(SpeechRequest("v", t, "tara", i))) for i, t in enumerate(said)
    ]
    audio_h = sum(len(s.pcm) for s in speech if s.pcm is not None) / SAMPLE_RATE / 3600
    started = time.process_time()
    for take, words_said in zip(speech, said, strict=True):
        check_speech(take, words_said, "espeak", "tara", checks, SILENCE_DBFS)
    generation = time.process_time() - started
    started = time.process_time()
    for take in speech:
        assert take.pcm is not None
        check_audio(take.pcm, SILENCE_DBFS, checks)
    return generation / audio_h, (time.process_time() - started) / audio_h


def sweep() -> None:
    """Every check on espeak-ng's healthy takes of 249 texts in eight voices, and on the same
    takes without their longest sentence."""
    from shared.checks.faults import skip_sentence
    from shared.text.chunking import chunk_text
    from shared.text.lexicon import Lexicon
    from shared.text.verbalizer import verbalize
    from shared.text.voices import VOICES

    sample = (ROOT / "shared" / "samples" / "sample.md").read_text()
    chunks = [span.text for span in chunk_text(sample, 400).spans]
    texts = [verbalize(t, Lexicon({})) for t in [*test_sentences(), *paragraphs(), *chunks]]
    engine, checks = EspeakEngine(), ChecksSettings()
    healthy = alarms = skipped = caught = 0
    for voice in VOICES:
        for seed, words in enumerate(texts):
            take = asyncio.run(engine.generate(SpeechRequest("v", words, voice, seed)))
            healthy += 1
            alarms += not _passes(take, words, voice, checks)
            short = skip_sentence(words)
            if short != words:
                take = asyncio.run(engine.generate(SpeechRequest("v", short, voice, seed)))
                skipped += 1
                caught += not _passes(take, words, voice, checks)
    print(
        f"espeak-ng, {len(texts)} texts in {len(VOICES)} voices: false alarms {alarms} of "
        f"{healthy} healthy takes; a sentence (or half a one-sentence text) skipped: caught "
        f"{caught} of {skipped} ({100 * caught / skipped:.1f} %)"
    )


def _passes(take: Speech, text: str, voice: str, checks: ChecksSettings) -> bool:
    assert take.pcm is not None
    verdict = check_speech(take, text, "espeak", voice, checks, SILENCE_DBFS)
    return (verdict + check_audio(take.pcm, SILENCE_DBFS, checks)).passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.5, help="share of first takes spoiled")
    parser.add_argument("--voices", default="tara,leo,zoe,dan", help="a job in each, at once")
    parser.add_argument("--sweep", action="store_true", help="no farm: espeak-ng's 249 texts")
    args = parser.parse_args()
    if args.sweep:
        return sweep()
    words, voices = book(), args.voices.split(",")
    spoiled = run_book("espeak", args.rate, words, voices, seed=11)
    simulated = run_book("simulated", args.rate, words, voices, seed=11)
    clean = run_book("espeak", 0.0, words, voices, seed=11)
    tally("espeak-ng, faults", spoiled)
    tally("simulated, faults", simulated)
    tally("espeak-ng, no faults", clean)
    extra_work(f"espeak-ng, {args.rate:.0%} of first takes spoiled", spoiled, clean)
    at_generation, at_decode = check_cost(words)
    print(
        f"the checks' own CPU per audio hour (espeak-ng takes, one core): {at_generation:.1f} s "
        f"at generation, {at_decode:.1f} s at decode; Whisper's, where turned on: "
        "bench/transcribe.py"
    )


if __name__ == "__main__":
    main()
