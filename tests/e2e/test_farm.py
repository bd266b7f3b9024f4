"""The farm as separate processes, started with the commands farmctl (and so compose.yaml and
k8s/) uses: api, gpu/cpu/stitch/webhook workers, beat and Flower, against the local Postgres
and Redis and moto's S3 server. The GPU worker runs Orpheus on the transformers backend with
the tiny generated checkpoint."""

from __future__ import annotations

import io
import json
import re
import secrets
import signal
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import mutagen.mp4
import pytest
import soundfile
import srt
import yaml
from standardwebhooks.webhooks import Webhook

from shared.audio import SAMPLE_RATE
from shared.audio.segments import chapter_start
from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import Job, utcnow
from tests.books import make_epub, three_chapter_book
from tests.e2e.conftest import Receiver, assert_complete, chunk_rows
from tests.services import forget_redis_keys

pytestmark = pytest.mark.slow

BOOK = """# Chapter One

The farm takes long texts and reads them aloud. It splits them into chunks, sends each chunk to
a GPU worker, decodes the codes on CPU workers, and stitches everything into one file.

tara: Is that all there is to it?
leo: That is most of it. <chuckle>

# Chapter Two

The second chapter checks that chapters survive the trip. It is short on purpose.
"""
TITLES = ["Chapter One: The Harbour", "Chapter Two: The Storm", "Chapter Three: The Lamp"]
LONG = "\n\n".join(f"Paragraph {i} says a few words, and then a few more words." for i in range(14))


def test_a_job_through_the_farm(farm, receiver):
    job = farm.submit(BOOK, format="flac", title="Farm", webhook_url=receiver)
    job = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"]["chunks_done"] == job["progress"]["chunks_total"] > 4
    assert_complete(farm, job)
    # the tiny model's random codes fail their checks: job.needs_review comes too, in any order
    deadline = time.monotonic() + 30
    while len(Receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    events = [Webhook(farm.secret).verify(body, headers) for headers, body in Receiver.received]
    assert sorted(e["type"] for e in events) == ["job.needs_review", "job.succeeded"]
    assert {e["data"]["id"] for e in events} == {job["id"]}
    history = httpx.get(f"{farm.api}/v1/jobs/{job['id']}/webhooks", headers=farm.headers).json()
    assert {h["status"] for h in history} == {"delivered"}
    assert {h["attempts"][0]["status_code"] for h in history} == {204}
    assert httpx.get(f"{farm.flower}/api/workers").status_code == 401  # basic auth
    ours = flower_tasks(farm, job["id"])  # task events reach Flower in batches every 100 ms
    assert {"gpu.generate_chunk", "cpu.decode_chunk", "stitch.stitch_job"} <= set(ours)
    assert set(ours.values()) == {"SUCCESS"}


def flower_tasks(farm, job_id: str, timeout: float = 10) -> dict[str, str]:
    """Name -> state of the job's tasks in Flower, once every one of them has finished."""
    deadline = time.monotonic() + timeout
    while True:
        tasks = httpx.get(f"{farm.flower}/api/tasks", auth=("ops", "s3cret"), timeout=10).json()
        ours = {t["name"]: t["state"] for t in tasks.values() if job_id in (t.get("kwargs") or "")}
        finished = bool(ours) and set(ours.values()) <= {"SUCCESS", "FAILURE"}
        if finished or time.monotonic() > deadline:
            return ours
        time.sleep(0.2)


def test_a_killed_cpu_worker_loses_nothing(farm):
    job = farm.submit(LONG, format="wav")
    deadline = time.monotonic() + 120
    held = None
    while held is None and time.monotonic() < deadline:  # a decode has claimed a chunk
        held = next(
            (r for r in chunk_rows(job["id"]) if r.status == "generated" and r.attempts >= 2), None
        )
    assert held is not None
    farm.kill("cpu-worker", signal.SIGKILL)
    assert farm.job(job["id"])["status"] == "running"
    farm.start("cpu-worker")
    job = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    assert_complete(farm, job)


def test_cancel_stops_generation(farm):
    job = farm.submit(LONG * 2, format="mp3")
    farm.wait(job["id"], lambda j: j["progress"]["chunks_done"] >= 1)
    response = httpx.post(f"{farm.api}/v1/jobs/{job['id']}/cancel", headers=farm.headers)
    cancelled_at = time.time()
    assert response.json()["status"] == "cancelled"
    time.sleep(2)  # chunks in flight at the cancel finish (~0.3 s each); no other one starts
    events = farm.events(job["id"])
    generated = [e for e in events if e["kind"] == "chunk.generated"]
    assert all(
        datetime.fromisoformat(e["created_at"]).timestamp() <= cancelled_at for e in generated
    )
    cancelled = {e["chunk"] for e in events if e["kind"] == "chunk.cancelled"}
    rows = chunk_rows(job["id"])
    assert cancelled == {r.index for r in rows if r.status == "cancelled"} and cancelled
    assert {r.status for r in rows} <= {"done", "cancelled"}
    assert farm.job(job["id"])["status"] == "cancelled"
    assert [e["kind"] for e in events if e["kind"].startswith("job.")] == [
        "job.queued",
        "job.running",
        "job.cancelled",
    ]


SLOW_TEXT = "\n\n".join(
    f"Part {i}: a sentence of some length, long enough to take a while." for i in range(6)
)


def test_a_worker_sent_sigterm_mid_chunk_finishes_it(farm):
    # compose's stop_grace_period for this gpu worker, on CPU (k8s gives it more)
    compose = yaml.safe_load((Path(__file__).parents[2] / "compose.yaml").read_text())
    period = compose["services"]["gpu-worker-cpu"]["stop_grace_period"]
    grace = int(period.removesuffix("m")) * 60
    job = farm.submit(SLOW_TEXT, format="wav")
    deadline = time.monotonic() + 120
    held = None
    while held is None and time.monotonic() < deadline:  # the gpu worker is generating it
        held = next(
            (r for r in chunk_rows(job["id"]) if r.status == "pending" and r.attempts), None
        )
    assert held is not None
    stopped = time.monotonic()
    try:  # a warm shutdown: the chunk in flight finishes, then the worker exits
        farm.kill("gpu-worker", signal.SIGTERM, timeout=grace)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the gpu worker was still running {grace} s after SIGTERM")
    assert time.monotonic() - stopped < grace
    after = {r.index: r for r in chunk_rows(job["id"])}
    assert after[held.index].status in ("generated", "done")  # finished, not dropped
    farm.start("gpu-worker")
    job = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    assert_complete(farm, job)


def test_a_short_job_goes_ahead_of_another_tenants_book(farm):
    """bench/fairness.py's (a) on the farm: a 3-chunk job of one tenant, submitted while
    another tenant's book keeps the gpu worker busy, is taken ahead of every book chunk still
    waiting, and done while the book is still running."""
    book = farm.submit("\n\n".join([LONG] * 6), format="opus")  # 84 chunks
    farm.wait(book["id"], lambda j: j["progress"]["chunks_done"] >= 1)  # under way
    with session_scope() as session:
        _, key = create_key(session, "globex")
    other = {"Authorization": f"Bearer {key}"}
    page_text = "A page of one tenant.\n\nIt is short.\n\nThree chunks in all."
    submitted = utcnow()
    response = httpx.post(f"{farm.api}/v1/jobs", json={"text": page_text}, headers=other)
    assert response.status_code == 202, response.text
    page_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while (page := httpx.get(f"{farm.api}/v1/jobs/{page_id}", headers=other).json())[
        "status"
    ] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, page["progress"]
        time.sleep(0.1)
    assert page["status"] == "succeeded" and page["progress"]["chunks_total"] == 3
    still = farm.job(book["id"])
    assert still["status"] == "running"
    assert still["progress"]["chunks_done"] < still["progress"]["chunks_total"]
    # a chunk whose 4 s lease ran out while a slow machine made it went back to the dispatcher
    # (its taken_at cleared) and was finished by the worker that held it: it tells nothing
    taken = [r.taken_at for r in chunk_rows(page_id) if r.taken_at]
    assert taken, "every chunk of the page outlived its lease"
    page_taken = max(taken)
    overtaking = [
        r for r in chunk_rows(book["id"]) if r.taken_at and submitted < r.taken_at < page_taken
    ]
    # only book chunks a gpu thread took in the moment before the page's messages came
    assert len(overtaking) <= 4, [(r.index, r.taken_at) for r in overtaking]
    httpx.post(f"{farm.api}/v1/jobs/{book['id']}/cancel", headers=farm.headers)


def test_the_reconciler_recovers_a_flushed_redis(farm):
    job = farm.submit(LONG, format="opus")
    farm.wait(job["id"], lambda j: j["progress"]["chunks_done"] >= 1)
    assert forget_redis_keys() > 0  # every queue and message of this farm gone
    job = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    assert_complete(farm, job)
    with session_scope() as session:
        assert session.get(Job, uuid.UUID(job["id"])).chunks_done == job["progress"]["chunks_total"]
    # the re-sent messages found their chunks already moved, or moved them once
    done = [e["chunk"] for e in farm.events(job["id"]) if e["kind"] == "chunk.done"]
    assert sorted(done) == list(range(job["progress"]["chunks_total"]))


def test_an_audiobook_through_the_farm_and_a_chapter_redone(farm, tmp_path):
    """A 3-chapter EPUB to ACX chapter files that pass ACX's checks, an M4B with the three
    chapters at their times, and captions; then chapter 2 redone with corrected text: the new
    version's files differ only in chapter 2."""
    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    response = httpx.post(
        f"{farm.api}/v1/jobs",
        headers=farm.headers,
        files={"file": ("b.epub", book.read_bytes())},
        data={"preset": "acx"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    job = farm.wait(response.json()["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    failed = {
        c["number"]: {k: v for k, v in c["acx"]["checks"].items() if not v["passed"]}
        for c in job["chapters"]
    }
    assert all(c["acx"]["passed"] for c in job["chapters"]), failed
    first = _files(job)
    m4b = mutagen.mp4.MP4(io.BytesIO(first["m4b", None]))
    assert [c.title for c in m4b.chapters] == TITLES
    lengths = [soundfile.info(io.BytesIO(first["chapter", n])).duration for n in (1, 2, 3)]
    starts = [c.start for c in m4b.chapters]
    # ACX's chapter files carry 3.25 s of room tone that the programme does not; the chapter
    # starts on the grid the book's files are joined on (shared.audio.segments)
    content = round((lengths[0] - 3.25) * SAMPLE_RATE)
    expected = chapter_start(0, content, 2 * SAMPLE_RATE) / SAMPLE_RATE
    assert starts[1] == pytest.approx(expected, abs=0.1)
    cues = list(srt.parse(first["captions", None].decode()))
    assert [c.content for c in cues if c.content in TITLES] == TITLES

    corrected = "By the evening the storm had passed. The harbour was calm again."
    redo = httpx.post(
        f"{farm.api}/v1/jobs/{job['id']}/chapters/2/regenerate",
        headers=farm.headers,
        json={"text": corrected},
        timeout=30,
    )
    assert redo.status_code == 202, redo.text
    again = farm.wait(job["id"], lambda j: j["outputs_version"] == 2 or j["status"] == "failed")
    assert again["status"] == "succeeded", again["error"]
    second = _files(again)
    assert (
        second["chapter", 1] == first["chapter", 1] and second["chapter", 3] == first["chapter", 3]
    )
    assert second["chapter", 2] != first["chapter", 2]
    before, after = (mutagen.mp4.MP4(io.BytesIO(f["m4b", None])).chapters for f in (first, second))
    assert [c.title for c in after] == TITLES
    assert after[1].start == pytest.approx(before[1].start, abs=0.001)  # chapter 1 the same
    three = [m4b_length(c, f) for c, f in ((before, first), (after, second))]
    assert three[0] == pytest.approx(three[1], abs=0.05)  # chapter 3 the same length, moved
    said = [c.content for c in srt.parse(second["captions", None].decode())]
    assert "The harbour was calm again." in said
    outside = [c.content for c in cues if c.content not in _chapter_two(cues)]
    assert outside == [
        c for c in said if c not in _chapter_two(list(srt.parse(second["captions", None].decode())))
    ]


def _files(job: dict) -> dict[tuple[str, int | None], bytes]:
    return {
        (o["kind"], o.get("chapter")): httpx.get(o["url"], timeout=30).content
        for o in job["outputs"]
    }


def m4b_length(chapters, files) -> float:
    return mutagen.mp4.MP4(io.BytesIO(files["m4b", None])).info.length - chapters[2].start


def _chapter_two(cues) -> set[str]:
    """The cues between the second title and the third."""
    titles = [i for i, c in enumerate(cues) if c.content in TITLES]
    return {c.content for c in cues[titles[1] : titles[2]]}


SIGNATURE = re.compile(r"(?:X-Amz-Signature|Signature)=([^&\s\"']+)")


def test_no_key_secret_or_signed_url_reaches_a_log(farm, receiver, tmp_path_factory):
    """A job with a webhook, read with its download URLs, its audio fetched through them, the
    webhook secret read, the web page signed in to: no log of the farm's processes (nor the S3
    endpoint's) holds the tenant's key, its webhook secret, the store's secret key or the
    signature of any URL handed out, nor the token a webhook URL carries for its receiver."""
    token = secrets.token_urlsafe(16)
    hook = f"{receiver}?token={token}"
    job = farm.submit(BOOK, format="mp3", title="Secrets", webhook_url=hook)
    job = farm.wait(job["id"], lambda j: j["status"] in ("succeeded", "failed"))
    assert job["status"] == "succeeded", job["error"]
    deadline = time.monotonic() + 30
    while not Receiver.received and time.monotonic() < deadline:
        time.sleep(0.2)
    (_, delivered), *_ = Receiver.received
    audio = httpx.get(f"{farm.api}/v1/jobs/{job['id']}/audio", headers=farm.headers)
    urls = [audio.headers["location"], *(o["url"] for o in farm.job(job["id"])["outputs"])]
    urls += [o["url"] for o in json.loads(delivered)["data"]["outputs"]]
    for url in urls[:3]:
        assert httpx.get(url, timeout=30).status_code == 200  # the store logs what it serves
    secret = httpx.get(f"{farm.api}/v1/webhooks/secret", headers=farm.headers).json()["secret"]
    key = farm.headers["Authorization"].removeprefix("Bearer ")
    with httpx.Client(base_url=farm.api) as browser:
        csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text)[1]
        browser.post("/sign-in", data={"key": key, "csrf": csrf})
        assert job["id"] in browser.get(f"/jobs/{job['id']}").text
    signatures = {match[1] for url in urls for match in SIGNATURE.finditer(url)}
    assert len(signatures) >= 3
    hidden = {
        "the tenant's key": key,
        "the webhook URL's token": token,
        "the webhook secret": secret.removeprefix("whsec_"),
        "the store's secret key": farm.env["LYRE_STORAGE__SECRET_ACCESS_KEY"],
        **{f"a URL's signature {s[:8]}…": s for s in signatures},
    }
    logs = [p for p in farm.state_dir.rglob("*") if p.is_file()]
    logs += list(tmp_path_factory.getbasetemp().glob("moto*/*.log"))
    assert {p.name for p in logs} >= {"api.log", "gpu-worker.log", "webhook-worker.log", "moto.log"}
    found = {
        (what, str(path))
        for path in logs
        for what, value in hidden.items()
        if value.encode() in path.read_bytes()
    }
    assert found == set()
