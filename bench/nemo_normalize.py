"""Normalise strings with NVIDIA's nemo-text-processing English normaliser, the reference that
Lyre's own text normaliser is compared against.

Runs under its own environment, not Lyre's .venv, and imports nothing from Lyre. Build it once
with ``make nemo-env`` (``~/.cache/lyre/nemo-tn-1.2.0``), then pass a JSON list of strings on
stdin (``bench/text.py --nemo`` does):

    echo '["Dr. Watson paid $3.50."]' \\
        | ~/.cache/lyre/nemo-tn-1.2.0/bin/python bench/nemo_normalize.py

It writes one JSON object to stdout: {"version", "init_s", "outputs", "seconds", "cpu_s",
"errors"}. "outputs" and "seconds" follow the input order; a string whose normalisation raises
gets output null and its error under "errors", keyed by its index. The compiled grammars are kept
in --cache-dir, so only the first run pays for compiling them (about 20 s). NeMo's log goes to
stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from importlib.metadata import version
from pathlib import Path

from nemo_text_processing.text_normalization.normalize import Normalizer

DEFAULT_CACHE = Path.home() / ".cache" / "lyre" / "nemo-grammars"


def run(texts: list[str], cache_dir: Path) -> dict[str, object]:
    start = time.perf_counter()
    normalizer = Normalizer(input_case="cased", lang="en", cache_dir=str(cache_dir))
    init_s = time.perf_counter() - start

    outputs: list[str | None] = []
    seconds: list[float] = []
    errors: dict[str, str] = {}
    cpu_start = time.process_time()
    for i, text in enumerate(texts):
        start = time.perf_counter()
        try:
            outputs.append(normalizer.normalize(text, verbose=False, punct_post_process=True))
        except Exception as exc:
            outputs.append(None)
            errors[str(i)] = f"{type(exc).__name__}: {exc}"
        seconds.append(time.perf_counter() - start)
    cpu_s = time.process_time() - cpu_start

    return {
        "version": version("nemo-text-processing"),
        "init_s": init_s,
        "outputs": outputs,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Normalise a JSON list of strings with NeMo.")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()

    texts = json.load(sys.stdin)
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        sys.exit("stdin must be a JSON list of strings")
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # Anything NeMo prints goes to stderr, so stdout carries only the result.
    with contextlib.redirect_stdout(sys.stderr):
        result = run(texts, args.cache_dir)
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
