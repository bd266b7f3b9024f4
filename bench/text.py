"""The text front-end: how often it says the test set as a careful reader would, what a
10-hour book's front-end costs, and how long the api takes to answer that book's submit.

    python bench/text.py [--no-submit] [--nemo ~/.cache/lyre/nemo-tn/bin/python]

1. The test set (``tests/fixtures/say/sentences.tsv``, sentences from style guides and books,
   each with what a careful reader says): the share said that way, by kind, and the misses.
2. A 10-hour book (540,000 characters, the speech of about 15 characters a second): the CPU
   seconds of the whole intake in this process (reading, chunking, saying, the lexicon), for
   plain prose (the bundled sample) and for a book made of the test set's sentences alone,
   where every sentence has numbers or abbreviations to say.
3. Unless ``--no-submit``: that book POSTed to a real api process (as ``make farm-up`` starts
   it, with moto's S3 and a database of its own), timed to the answer.
4. With ``--nemo``: NVIDIA's nemo-text-processing (``bench/nemo_normalize.py`` run by that
   interpreter, ``make nemo-env`` builds it) on the same test set, scored the same way, and
   its cost per sentence.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shared.farm.intake import Submission, take_in  # noqa: E402
from shared.infra.settings import get_settings  # noqa: E402
from shared.text.normalize import normalize_text  # noqa: E402
from shared.text.verbalizer import verbalize  # noqa: E402

TEST_SET = ROOT / "tests" / "fixtures" / "say" / "sentences.tsv"
SAMPLE = ROOT / "shared" / "samples" / "sample.md"
BOOK_CHARS = 540_000  # ten hours at about 15 characters a second


@dataclass(frozen=True)
class Case:
    kind: str
    source: str
    written: str
    spoken: tuple[str, ...]  # what careful readers say; any one will do


def load_cases(path: Path = TEST_SET) -> list[Case]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    rows = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return [
        Case(row["kind"], row["source"], row["written"], tuple(row["spoken"].split(" | ")))
        for row in rows
    ]


def words(text: str) -> list[str]:
    """What is heard: lower case, hyphens and punctuation as spaces, apostrophes kept."""
    return re.sub(r"[^\w'’]+", " ", text.lower().replace("’", "'")).split()


def said_right(case: Case, said: str) -> bool:
    return any(words(said) == words(spoken) for spoken in case.spoken)


def misses(cases: list[Case], said: list[str]) -> list[tuple[Case, str]]:
    return [(case, out) for case, out in zip(cases, said, strict=True) if not said_right(case, out)]


def report_set(name: str, cases: list[Case], said: list[str]) -> None:
    missed = misses(cases, said)
    share = 1 - len(missed) / len(cases)
    print(f"{name}: {len(cases) - len(missed)} of {len(cases)} said as a reader says them "
          f"({share:.1%}; target 95 %)")  # fmt: skip
    kinds, wrong = Counter(c.kind for c in cases), Counter(c.kind for c, _ in missed)
    print("  " + ", ".join(f"{k} {kinds[k] - wrong[k]}/{kinds[k]}" for k in sorted(kinds)))
    for case, out in missed:
        print(f"  miss [{case.kind}] {case.written!r}")
        print(f"       said {out!r}\n       want {case.spoken[0]!r}")


def book(paragraphs: list[str]) -> str:
    """A 10-hour book of chapters of 30 paragraphs, repeating ``paragraphs`` with their digits
    shifted at each round (``9`` as ``0`` in the second): no number is said twice for free."""
    parts, size, n = [], 0, 0
    while size < BOOK_CHARS:
        if n % 30 == 0:
            parts.append(f"# Chapter {n // 30 + 1}")
        shift = n // len(paragraphs) % 10
        digits = str.maketrans("0123456789", "0123456789"[shift:] + "0123456789"[:shift])
        parts.append(paragraphs[n % len(paragraphs)].translate(digits))
        size += len(parts[-1]) + 2
        n += 1
    return "\n\n".join(parts)


def intake_cpu_s(text: str) -> tuple[float, int]:
    """CPU seconds of the whole intake of ``text`` as a job (nothing stored), and its chunks."""
    settings = get_settings()
    lexicon = {"Siobhan": "shiv-awn", "Nguyen": "win"}
    started = time.process_time()
    intake = take_in(settings, Submission(data=text.encode(), lexicon=lexicon))
    said = intake.preview()
    return time.process_time() - started, len(said)


def submit_s(texts: list[str]) -> list[float]:
    """Seconds from sending each of ``texts`` to a real api process to its answer."""
    import httpx

    from shared.farm.tenants import create_key
    from shared.infra.db import session_scope

    sys.path.insert(0, str(ROOT / "bench"))  # bench/api.py imports bench/load.py
    spec = importlib.util.spec_from_file_location("bench_api", ROOT / "bench" / "api.py")
    assert spec is not None and spec.loader is not None
    bench_api = sys.modules["bench_api"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_api)

    with tempfile.TemporaryDirectory() as state:
        bench = bench_api.new_bench(Path(state))
        try:
            api_url, _ = bench_api.start_api(bench)
            with session_scope(bench.db) as session:
                _, key = create_key(session, "reader")
            took = []
            for text in texts:
                started = time.perf_counter()
                answer = httpx.post(
                    f"{api_url}/v1/jobs",
                    json={"text": text},
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=120,
                )
                took.append(time.perf_counter() - started)
                answer.raise_for_status()
            return took
        finally:
            bench.close()


def nemo(python: str, cases: list[Case]) -> tuple[list[str], dict]:
    script = ROOT / "bench" / "nemo_normalize.py"
    run = subprocess.run(
        [python, str(script)],
        input=json.dumps([normalize_text(case.written) for case in cases]),
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(run.stdout)
    return [out or "" for out in result["outputs"]], result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-submit", action="store_true", help="skip the api's submit")
    parser.add_argument("--nemo", metavar="PYTHON", help="an interpreter with nemo installed")
    args = parser.parse_args()

    cases = load_cases()
    started = time.process_time()
    said = [verbalize(normalize_text(case.written)) for case in cases]
    each_ms = (time.process_time() - started) * 1e3 / len(cases)
    report_set("Lyre", cases, said)
    print(f"  {each_ms:.3f} ms of CPU a sentence")

    prose = [p for p in SAMPLE.read_text().split("\n\n") if p and not p.startswith("#")]
    dense = [case.written for case in cases]
    books = {"prose": book(prose), "the test set's sentences": book(dense)}
    for name, text in books.items():
        cpu, chunks = intake_cpu_s(text)
        print(f"10-hour book of {name} ({len(text):,} characters, {chunks:,} chunks): "
              f"intake {cpu:.1f} CPU s (target 120)")  # fmt: skip
    if not args.no_submit:
        for name, took in zip(books, submit_s(list(books.values())), strict=True):
            print(f"submit of the 10-hour book of {name} to the api: answered in {took:.2f} s"
                  " (target 5)")  # fmt: skip
    if args.nemo:
        outputs, result = nemo(args.nemo, cases)
        report_set(f"NeMo {result['version']}", cases, outputs)
        per = result["cpu_s"] * 1e3 / len(cases)
        print(f"  {per:.1f} ms of CPU a sentence after {result['init_s']:.2f} s to load")


if __name__ == "__main__":
    main()
