"""vLLM's own code on this machine's CPU: the CPU platform (``VLLM_TARGET_DEVICE=cpu``, which
``make check-vllm`` sets) lets vLLM build and validate its configuration and its sampler's
batch state on CPU tensors, with no GPU and no compiled kernels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.speech.vllm_backend import prepare_environment

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
prepare_environment()  # what VllmBackend does before it builds the engine


@pytest.fixture(scope="session")
def orpheus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random checkpoint in Orpheus's layout (Llama, Orpheus's vocabulary)."""
    from tests.checkpoints import build_orpheus

    return build_orpheus(tmp_path_factory.mktemp("orpheus"))


@pytest.fixture(scope="session")
def vllm_config(orpheus_dir: Path):
    """The engine configuration vLLM builds from Lyre's default settings."""
    from vllm.engine.arg_utils import AsyncEngineArgs

    from shared.infra.settings import OrpheusSettings
    from shared.speech.vllm_backend import engine_arguments

    return AsyncEngineArgs(
        **engine_arguments(str(orpheus_dir), OrpheusSettings())
    ).create_engine_config()
