"""bench/gpu.py, run through its main as the command line runs it: a smoke run on the CPU
with tiny shapes, and the refusal without CUDA."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "gpu.py"


def load_script():
    """bench/gpu.py as a module (its main takes the command line's arguments)."""
    spec = importlib.util.spec_from_file_location("bench_gpu", SCRIPT)
    gpu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu)
    return gpu


def test_cpu_smoke_run_prints_a_figure_per_batch_and_for_snac(capsys):
    load_script().main(
        [
            *("--device", "cpu", "--shape", "tiny", "--batches", "1,4", "--steps", "2"),
            *("--context", "16", "--snac-frames", "4", "--snac-batches", "1,2"),
            *("--snac-dtypes", "fp32"),
        ]
    )
    out = capsys.readouterr().out
    for batch in (1, 4):  # batch, step ms, tokens/s, audio s/s, x real time per sequence
        assert re.search(rf"^\s+{batch}\s+[\d.]+\s+\d+\s+[\d.]+\s+[\d.]+\s+n/a$", out, re.M), out
    assert re.search(r"^lm decode: \d+ tokens/s at batch [14] = [\d.]+ audio seconds", out, re.M)
    for batch in (1, 2):
        assert re.search(rf"^\s+fp32\s+{batch}\s+[\d.]+$", out, re.M), out
    assert re.search(
        r"^snac decode: [\d.]+ audio seconds per second \(fp32, batch [12]\)", out, re.M
    )
    assert "transformers " in out and "torch " in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_exits_2_with_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        load_script().main(["--device", "cuda"])
    assert exited.value.code == 2
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0], lines


@pytest.mark.parametrize(
    "args", [("--shape", "huge"), ("--batches", "1,0"), ("--steps", "x"), ("--device", "nope")]
)
def test_bad_arguments_are_argparse_errors(args, capsys):
    with pytest.raises(SystemExit) as exited:
        load_script().main(list(args))
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_constants_match_lyres():
    from shared.audio import SAMPLE_RATE
    from shared.snac.decoder import SNAC_24KHZ_CONFIG
    from shared.speech.codec import FRAME_TOKENS, SAMPLES_PER_FRAME

    gpu = load_script()
    assert gpu.SNAC_24KHZ_CONFIG == SNAC_24KHZ_CONFIG
    assert (gpu.FRAME_TOKENS, gpu.SAMPLES_PER_FRAME, gpu.SAMPLE_RATE) == (
        FRAME_TOKENS,
        SAMPLES_PER_FRAME,
        SAMPLE_RATE,
    )
    assert gpu.TOKENS_PER_AUDIO_SECOND == pytest.approx(82.03, abs=0.01)
