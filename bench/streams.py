"""Speech requests playing from live streams, for ``bench/api.py --streams N``: N requests through
the api (OpenAI's endpoint, PCM, read as they come), their chunks' SNAC frames published to
Redis as a gpu worker's engine would publish them, one frame per 85 ms (real time), random
codes that the api decodes as they come with a random SNAC of the real size. No
worker runs: the api hears every chunk from its stream, as a listener does while the farm
works.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
from sqlalchemy import select

from shared.farm.live import LivePublisher
from shared.infra import queues
from shared.infra.db import session_scope
from shared.infra.models import Chunk, Job
from shared.infra.settings import RedisSettings, Settings
from shared.speech.codec import FRAME_TOKENS, codes_from_frames
from shared.speech.engine import Speech
from shared.speech.simulated import tokens_for

FRAME_S = 2048 / 24000  # a SNAC frame's audio: the engine keeps pace with the listener
TEXT = " ".join(
    f"Sentence {i} of a long answer, heard while the engine makes it." for i in range(60)
)


class Streams:
    def __init__(self, api: str, auth: dict[str, str], db: str, redis: str, prefix: str) -> None:
        self.api, self.auth, self.db = api, auth, db
        settings = Settings(redis=RedisSettings(url=redis, key_prefix=prefix))
        self.publisher = LivePublisher(queues.redis_client(redis, 5), settings)
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.heard = 0  # bytes of PCM the listeners read
        self.listening = 0  # listeners that have heard their first bytes
        self.jobs: list[uuid.UUID] = []

    def start(self, n: int) -> None:
        since = time.time()
        for _ in range(n):
            self._thread(self._listen)
        self.jobs = self._jobs(n, since)
        for job_id in self.jobs:
            self._thread(self._publish, job_id)

    def wait_flowing(self, n: int, timeout_s: float = 180) -> float:
        """Seconds until each of the ``n`` listeners has heard its first bytes (an api whose
        decoding processes are still loading makes them wait)."""
        began = time.monotonic()
        while self.listening < n:
            if time.monotonic() - began > timeout_s:
                raise RuntimeError(f"{self.listening} of {n} listeners heard anything")
            time.sleep(0.1)
        return time.monotonic() - began

    def close(self) -> None:
        """Stop publishing and cancel the jobs, which ends their listeners' requests."""
        self.stop.set()
        for job_id in self.jobs:
            httpx.post(f"{self.api}/v1/jobs/{job_id}/cancel", headers=self.auth, timeout=30)
        for thread in self.threads:
            thread.join(timeout=30)

    def _thread(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _listen(self) -> None:
        body = {"model": "tts-1", "voice": "tara", "input": TEXT, "response_format": "pcm"}
        with httpx.stream(
            "POST", f"{self.api}/v1/audio/speech", json=body, headers=self.auth, timeout=600
        ) as response:
            try:
                for number, data in enumerate(response.iter_bytes()):
                    self.listening += number == 0
                    self.heard += len(data)
            except httpx.HTTPError:  # the job cancelled: the stream ends short
                return

    def _jobs(self, n: int, since: float) -> list[uuid.UUID]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with session_scope(self.db) as session:
                found = session.scalars(
                    select(Job.id).where(
                        Job.interactive, Job.created_at >= datetime.fromtimestamp(since, UTC)
                    )
                ).all()
            if len(found) >= n:
                return list(found)
            time.sleep(0.05)
        raise RuntimeError(f"{n} speech requests did not become jobs")

    def _publish(self, job_id: uuid.UUID) -> None:
        with session_scope(self.db) as session:
            chunks = session.execute(
                select(Chunk.index, Chunk.text).where(Chunk.job_id == job_id).order_by(Chunk.index)
            ).all()
        rng = np.random.default_rng(job_id.int % 2**32)
        next_at = time.monotonic()
        for index, text in chunks:
            frames = tokens_for(text, 5.5) // FRAME_TOKENS
            codes = codes_from_frames(rng.integers(0, 4096, (frames, FRAME_TOKENS)).tolist())
            listener = self.publisher.listener(job_id, index, 0)
            for frame in range(frames):
                if self.stop.is_set():
                    return
                listener(codes.select(np.array([frame])))
                next_at += FRAME_S
                time.sleep(max(0.0, next_at - time.monotonic()))
            listener.finish(Speech(codes=codes), kept=True)


def snac_checkpoint(folder: Path) -> Path:
    """A SNAC 24 kHz of the real size, random weights, in the published layout."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.checkpoints import build_snac

    return build_snac(folder)
