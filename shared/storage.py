"""Object storage for chunk audio and outputs, and the one place that builds their keys."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def chunk_audio_key(job_id: str, index: int) -> str:
    return f"jobs/{job_id}/chunks/{index:06d}.f32"


def output_key(job_id: str, fmt: str) -> str:
    return f"jobs/{job_id}/output.{fmt}"


class LocalStore:
    """A folder standing in for the bucket in embedded mode."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def put_pcm(self, key: str, pcm: np.ndarray) -> None:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pcm.astype("<f4").tofile(tmp)
        tmp.replace(path)  # atomic: a retried chunk rewrites the same object whole

    def get_pcm(self, key: str) -> np.ndarray:
        return np.fromfile(self.path(key), dtype="<f4")
