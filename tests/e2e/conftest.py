"""Running the farm's processes for end-to-end tests, as farmctl (and compose, k8s) does."""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import av
import httpx
import pytest
from sqlalchemy import select

from shared.audio import SAMPLE_RATE
from shared.audio.programme import pause_samples
from shared.audio.segments import chapter_start, first_start
from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import Chunk
from shared.infra.settings import AudioSettings
from shared.text.chunking import Boundary
from tests.conftest import services_for
from workers import farm_processes
from workers.farm_processes import free_port


class Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()


class RunningFarm:
    def __init__(self, env: dict[str, str], state_dir: Path) -> None:
        self.env, self.state_dir = env, state_dir
        self.api = f"http://127.0.0.1:{env['API_PORT']}"
        self.flower = f"http://127.0.0.1:{env['LYRE_FLOWER__PORT']}"
        specs = farm_processes.processes(
            int(env["API_PORT"]),
            flower_port=int(env["LYRE_FLOWER__PORT"]),
            gpu_concurrency=4,
            state_dir=state_dir,
        )
        self.specs = {s.name: s for s in specs if s.name != "s3"}  # moto runs as a fixture
        self.children = {}
        with session_scope() as session:
            tenant, key = create_key(session, "acme")
            self.secret = tenant.webhook_secret
        self.headers = {"Authorization": f"Bearer {key}"}

    def start(self, name: str) -> None:
        spec = self.specs[name]
        self.children[name] = farm_processes.start(spec, self.env, self.state_dir)
        farm_processes.wait_healthy(spec, self.children[name])

    def start_at_once(self, names: list[str]) -> None:
        """Start these processes together (workers need a few seconds to import; nothing
        waits for them but their queues), then wait for the api, if among them, to answer."""
        for name in names:
            self.children[name] = farm_processes.start(self.specs[name], self.env, self.state_dir)
        if "api" in names:
            farm_processes.wait_healthy(self.specs["api"], self.children["api"])

    def kill(self, name: str, sig: int = signal.SIGKILL, timeout: float = 60) -> None:
        """Signal a process's group and wait until it exits (TimeoutExpired past ``timeout``)."""
        child = self.children.pop(name)
        os.killpg(child.pid, sig)
        child.wait(timeout=timeout)

    def stop_all(self) -> None:
        """SIGTERM to every process at once, then wait for each: their warm shutdowns overlap."""
        children, self.children = self.children, {}
        for child in children.values():
            os.killpg(child.pid, signal.SIGTERM)
        for child in children.values():
            child.wait(timeout=60)

    def workers(self) -> set[str]:
        response = httpx.get(
            f"{self.flower}/api/workers",
            params={"refresh": "1"},
            auth=tuple(self.env["LYRE_FLOWER__BASIC_AUTH"].split(":")),
            timeout=10,
        )
        response.raise_for_status()
        return {name.split("@")[0] for name in response.json()}

    def wait_for_workers(self, expected: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expected <= self.workers():
                return
            time.sleep(0.3)
        raise TimeoutError(f"workers {expected - self.workers()} never showed up in Flower")

    def submit(self, text: str, **fields) -> dict:
        response = httpx.post(
            f"{self.api}/v1/jobs", json={"text": text, **fields}, headers=self.headers, timeout=30
        )
        assert response.status_code == 202, response.text
        return response.json()

    def job(self, job_id: str) -> dict:
        return httpx.get(f"{self.api}/v1/jobs/{job_id}", headers=self.headers, timeout=10).json()

    def events(self, job_id: str) -> list[dict]:
        """The job's whole history, through GET /v1/jobs/{id}/events page by page."""
        events: list[dict] = []
        after = None
        while True:
            params = {"limit": 100, **({"after": after} if after is not None else {})}
            page = httpx.get(
                f"{self.api}/v1/jobs/{job_id}/events",
                params=params,
                headers=self.headers,
                timeout=10,
            ).json()
            events += page["items"]
            after = page["next_after"]
            if after is None:
                return events

    def wait(self, job_id: str, until, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if until(job):
                return job
            time.sleep(0.1)
        raise TimeoutError(f"job {job_id} stayed {job['status']} ({job['progress']})")


@pytest.fixture()
def receiver():
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hooks"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def process_env(farm_env, orpheus_env) -> Iterator[dict[str, str]]:
    """The environment of the farm's processes: the test services, fresh for each module,
    and free ports."""
    with services_for(farm_env):
        yield {
            **os.environ,
            **farm_env,
            **orpheus_env,
            "API_PORT": str(free_port()),
            "LYRE_FLOWER__PORT": str(free_port()),
            "LYRE_FLOWER__BASIC_AUTH": "ops:s3cret",
        }


@pytest.fixture(scope="module")
def farm(process_env, tmp_path_factory):
    """The whole farm, started once for a module's tests (each leaves it running whole)."""
    running = RunningFarm(process_env, tmp_path_factory.mktemp("farm"))
    try:
        for name in running.specs:
            running.start(name)
        running.wait_for_workers({"gpu", "cpu", "stitch", "webhooks"})
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def api_only(process_env, tmp_path_factory):
    """The api and the dispatcher, running for a module's tests; each test starts the workers
    it wants, and stops them (no beat: no reconciler)."""
    running = RunningFarm(
        {**process_env, "LYRE_ENGINE": "espeak"}, tmp_path_factory.mktemp("api-only")
    )
    try:
        running.start("api")
        running.start("dispatcher")
        yield running
    finally:
        running.stop_all()


def chunk_rows(job_id: str) -> list[Chunk]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Chunk).where(Chunk.job_id == uuid.UUID(job_id)).order_by(Chunk.index)
            )
        )


def programme_samples(chunks: list[tuple[int, Boundary, int]]) -> int:
    """A programme's samples from its chunks' (chapter, boundary, samples): each after its
    boundary's pause; in a book of more than one chapter, whose MP3 and M4B are joined from
    the chapters' segments, each chapter on their grid (``shared.audio.segments``)."""
    joined = len({chapter for chapter, _, _ in chunks}) > 1
    at = begin = 0
    for i, (chapter, boundary, samples) in enumerate(chunks):
        pause = pause_samples(boundary, AudioSettings())
        if joined and (i == 0 or chapter != chunks[i - 1][0]):
            start = chapter_start(begin, at - begin, pause) if i else first_start(pause)
            pause, begin = start - at, start
        at += pause + samples
    return at


def assert_complete(farm: RunningFarm, job: dict) -> None:
    """Every chunk present once, and the file as long as the chunks and pauses together."""
    rows = chunk_rows(job["id"])
    assert [r.index for r in rows] == list(range(job["progress"]["chunks_total"]))
    assert all(r.status == "done" for r in rows)
    expected = programme_samples([(r.chapter, Boundary(r.boundary), r.samples) for r in rows])
    url = httpx.get(f"{farm.api}/v1/jobs/{job['id']}/audio", headers=farm.headers).headers[
        "location"
    ]
    with av.open(_download(url)) as container:
        rate = container.streams.audio[0].rate  # Opus decodes at 48 kHz
        samples = sum(frame.samples for frame in container.decode(audio=0)) * SAMPLE_RATE // rate
    assert abs(samples - expected) <= 2048


def _download(url: str) -> io.BytesIO:
    return io.BytesIO(httpx.get(url, timeout=30).content)
