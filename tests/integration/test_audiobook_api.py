"""Audiobooks through the REST API (TestClient, burst sender, real Postgres and S3): an EPUB
uploaded, its chapters listenable one by one, the book's files, a chapter redone as a new
version, lexicons, and bad books refused with nothing stored."""

from __future__ import annotations

import io
import json
import zipfile

import httpx
import mutagen.mp3
import mutagen.mp4
import pytest
from sqlalchemy import func, select

from shared.infra.db import session_scope
from shared.infra.models import Job
from tests.books import make_epub, three_chapter_book, zip_bomb
from tests.integration.test_api import key_for

TITLES = ["Chapter One: The Harbour", "Chapter Two: The Storm", "Chapter Three: The Lamp"]


@pytest.fixture()
def auth(farm_settings):
    return key_for("bookshop")


def upload(client, auth, path, **fields):
    with open(path, "rb") as book:
        return client.post(
            "/v1/jobs", headers=auth, files={"file": (path.name, book.read())}, data=fields
        )


def objects(burst) -> set[str]:
    store = burst.farm.store
    pages = store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def get(client, auth, job_id):
    return client.get(f"/v1/jobs/{job_id}", headers=auth).json()


def test_an_epub_upload_is_listenable_chapter_by_chapter(client, auth, burst, tmp_path):
    book = make_epub(tmp_path / "b.epub", three_chapter_book(), title="Harbour Lights")
    response = upload(client, auth, book, preset="acx")
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["title"], job["author"], job["preset"]) == ("Harbour Lights", "Ada Writer", "acx")
    assert [c["title"] for c in job["chapters"]] == TITLES
    assert {c["status"] for c in job["chapters"]} == {"waiting"}
    # generate everything, but decode only the first chapter's chunks
    burst.drain(("generate",))
    first = {c.index for c in _chunks(job["id"]) if c.chapter == 0}
    for message in [m for m in burst.sender.messages if m[0] == "decode" and m[2] in first]:
        burst.sender.messages.remove(message)
        burst.run(message)
    burst.drain(("chapter",))
    now = get(client, auth, job["id"])
    assert now["status"] == "running" and [c["status"] for c in now["chapters"]] == [
        "done",
        "waiting",
        "waiting",
    ]
    one = now["chapters"][0]
    assert one["chunks_done"] == one["chunks_total"] and one["acx"]["passed"]
    audio = httpx.get(one["url"]).content  # listenable before the book is finished
    tags = mutagen.mp3.MP3(io.BytesIO(audio))
    assert str(tags.tags["TIT2"]) == TITLES[0] and tags.info.sample_rate == 44100
    burst.drain()
    done = get(client, auth, job["id"])
    assert done["status"] == "succeeded" and done["outputs_version"] == 1
    kinds = sorted((o["kind"], o["format"]) for o in done["outputs"])
    assert kinds == [
        ("captions", "srt"),
        ("captions", "vtt"),
        ("chapter", "mp3"),
        ("chapter", "mp3"),
        ("chapter", "mp3"),
        ("chapters", "json"),
        ("m4b", "m4b"),
        ("programme", "mp3"),
    ]
    m4b = next(o for o in done["outputs"] if o["kind"] == "m4b")
    chapters = mutagen.mp4.MP4(io.BytesIO(httpx.get(m4b["url"]).content)).chapters
    assert [c.title for c in chapters] == TITLES
    assert all(c["acx"]["passed"] for c in done["chapters"])


def _chunks(job_id):
    from shared.infra.models import Chunk

    with session_scope() as session:
        return list(session.scalars(select(Chunk).where(Chunk.job_id == job_id)))


def test_a_redone_chapter_is_a_new_version_that_changes_only_that_chapter(
    client, auth, burst, tmp_path
):
    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    job = upload(client, auth, book, format="wav").json()
    burst.drain()
    before = get(client, auth, job["id"])
    files = {(o["kind"], o.get("chapter")): o for o in before["outputs"]}
    url = f"/v1/jobs/{job['id']}/chapters/2/regenerate"
    corrected = "By the evening the storm had passed. The harbour was calm again."
    response = client.post(url, headers=auth, json={"text": corrected, "voice": "leo"})
    assert response.status_code == 202, response.text
    redoing = response.json()
    assert (redoing["status"], redoing["version"], redoing["outputs_version"]) == ("running", 2, 1)
    assert [c["status"] for c in redoing["chapters"]] == ["done", "waiting", "done"]
    # the chapter counts its new chunks, none done yet; the others keep theirs
    counts = [(c["chunks_done"], c["chunks_total"]) for c in redoing["chapters"]]
    assert counts[1] == (0, 2) and counts[0][0] == counts[0][1] and counts[2][0] == counts[2][1]
    # the current files stay downloadable until the new ones are made
    assert httpx.get(redoing["outputs"][0]["url"]).status_code == 200
    assert client.post(url, headers=auth, json={}).status_code == 409  # one redo at a time
    burst.drain()
    after = get(client, auth, job["id"])
    assert after["status"] == "succeeded" and after["outputs_version"] == 2
    assert all(c["chunks_done"] == c["chunks_total"] > 0 for c in after["chapters"])
    new = {(o["kind"], o.get("chapter")): o for o in after["outputs"]}
    for n in (1, 3):  # the same files: not made again
        assert new["chapter", n]["version"] == 1
        assert (
            httpx.get(new["chapter", n]["url"]).content
            == httpx.get(files["chapter", n]["url"]).content
        )
    assert new["chapter", 2]["version"] == 2
    gone = httpx.get(files["programme", None]["url"]).status_code
    assert gone in (403, 404)  # the old book is removed (S3 says 403 to a signed GET of none)
    vtt = httpx.get(new["captions", None]["url"]).text
    assert "The harbour was calm again." in vtt and "Rain came down" not in vtt
    voices = {c.voice for c in _chunks(job["id"]) if c.chapter == 1}
    assert voices == {"leo"}


def test_a_read_along_epub_is_an_output_kept_from_the_upload_and_made_again_on_a_redo(
    client, auth, burst, tmp_path
):
    book = make_epub(tmp_path / "b.epub", three_chapter_book(), footnotes=True)
    job = upload(client, auth, book, mastering='{"read_along": true}').json()
    assert f"jobs/{job['id']}/source.epub" in objects(burst)  # the book, for its own pages
    burst.drain()
    done = get(client, auth, job["id"])
    (epub,) = [o for o in done["outputs"] if o["kind"] == "read_along"]
    assert epub["format"] == "epub" and epub["url"].split("?")[0].endswith("/v1/book.epub")
    assert epub["coverage"] == 1.0  # every sentence spoken has its clip
    first = zipfile.ZipFile(io.BytesIO(httpx.get(epub["url"]).content))
    overlays = sorted(n for n in first.namelist() if n.endswith(".smil"))
    assert len(overlays) == 3 and first.read("mimetype") == b"application/epub+zip"
    page = first.read("OEBPS/text/ch02.xhtml").decode()
    assert 'id="lyre-s' in page and "Rain came down" in page
    url = f"/v1/jobs/{job['id']}/chapters/2/regenerate"
    assert client.post(url, headers=auth, json={"voice": "leo"}).status_code == 202
    burst.drain()
    again = get(client, auth, job["id"])
    (epub,) = [o for o in again["outputs"] if o["kind"] == "read_along"]
    assert epub["version"] == 2
    second = zipfile.ZipFile(io.BytesIO(httpx.get(epub["url"]).content))
    assert [second.read(n) != first.read(n) for n in overlays] == [False, True, False]


def test_the_library_zip_is_streamed_from_the_store_laid_out_for_a_library(
    client, auth, burst, tmp_path
):
    book = make_epub(
        tmp_path / "b.epub", three_chapter_book(), title="Harbour Lights", description="Ships."
    )
    job = upload(client, auth, book, mastering='{"read_along": true}', format="m4b").json()
    url = f"/v1/jobs/{job['id']}/library.zip"
    early = client.get(url, headers=auth)
    assert early.status_code == 409 and "succeeded" in early.json()["detail"]
    burst.drain()
    with client.stream("GET", url, headers=auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        assert "content-length" not in response.headers  # streamed as it is read
        assert "Harbour%20Lights.zip" in response.headers["content-disposition"]
        data = b"".join(response.iter_bytes())
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    at = "Ada Writer/Harbour Lights/"
    assert sorted(archive.namelist()) == sorted(
        f"{at}{name}"
        for name in (
            "Harbour Lights.m4b",
            "Harbour Lights.epub",
            "metadata.json",
            "metadata.opf",
            "desc.txt",
            "reader.txt",
        )
    )
    outputs = {o["kind"]: o for o in get(client, auth, job["id"])["outputs"]}
    assert archive.read(f"{at}Harbour Lights.m4b") == httpx.get(outputs["programme"]["url"]).content
    assert (
        archive.read(f"{at}Harbour Lights.epub") == httpx.get(outputs["read_along"]["url"]).content
    )
    about = json.loads(archive.read(f"{at}metadata.json"))
    assert [c["title"] for c in about["chapters"]] == TITLES and about["description"] == "Ships."
    assert archive.read(f"{at}desc.txt") == b"Ships."
    other = client.get(url, headers=key_for("someone-else"))
    assert other.status_code == 404


def test_redo_errors_are_clear(client, auth, burst, tmp_path):
    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    job = upload(client, auth, book).json()
    url = f"/v1/jobs/{job['id']}/chapters"
    assert client.post(f"{url}/1/regenerate", headers=auth, json={}).status_code == 409
    burst.drain()
    assert client.post(f"{url}/4/regenerate", headers=auth, json={}).status_code == 404
    assert client.post(f"{url}/0/regenerate", headers=auth, json={}).status_code == 422
    empty = client.post(f"{url}/1/regenerate", headers=auth, json={"text": "..."})
    assert empty.status_code == 422 and "nothing to say" in empty.json()["detail"]
    other = client.post(f"{url}/1/regenerate", headers=key_for("other"), json={})
    assert other.status_code == 404


def test_a_request_sets_its_presets_defaults_otherwise(client, auth, burst, tmp_path):
    book = make_epub(tmp_path / "b.epub", three_chapter_book())
    choices = '{"target": -21.5, "tail_s": 3.0, "bitrate_kbps": 96}'
    job = upload(client, auth, book, preset="acx", mastering=choices).json()
    assert job["mastering"]["target"] == -21.5 and job["mastering"]["chapter_rate"] == 44100
    burst.drain()
    for chapter in get(client, auth, job["id"])["chapters"]:
        checks = chapter["acx"]["checks"]
        assert checks["rms_dbfs"]["value"] == pytest.approx(-21.5, abs=0.6)
        assert checks["tail_room_tone_s"]["value"] == pytest.approx(3.0, abs=0.1)
    bad = upload(client, auth, book, mastering='{"loudness": "loud"}')
    assert bad.status_code == 422 and "mastering.loudness" in bad.json()["detail"]


def test_tenant_and_request_lexicons(client, auth, burst):
    put = client.put("/v1/lexicon", headers=auth, json={"entries": {"mara": "mah-rah"}})
    assert put.status_code == 200 and client.get("/v1/lexicon", headers=auth).json() == put.json()
    text = "# One\n\nMara and Siobhan sailed."
    job = client.post(
        "/v1/jobs", headers=auth, json={"text": text, "lexicon": {"siobhan": "shiv-awn"}}
    ).json()
    assert job["lexicon"] == {"entries": 2, "applied": {"mara": 1, "siobhan": 1}}
    said = " ".join(c.text for c in _chunks(job["id"]))
    assert "Mah-rah and Shiv-awn sailed." in said
    bad = client.put("/v1/lexicon", headers=auth, json={"entries": {"": "x"}})
    assert bad.status_code == 422


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p / "fake.epub", "not a zip archive"),
        (lambda p: zip_bomb(p / "bomb.epub", 300 * 2**20), "unpacks to more than"),
        (lambda p: make_epub(p / "d.epub", three_chapter_book(), drm=True), "DRM"),
        (lambda p: make_epub(p / "s.epub", three_chapter_book(), no_spine=True), "no spine"),
        (lambda p: make_epub(p / "m.epub", three_chapter_book(), break_spine=True), "not in"),
    ],
)
def test_bad_books_get_a_422_and_nothing_is_stored(client, auth, burst, tmp_path, make, needle):
    path = make(tmp_path)
    if not path.exists():
        path.write_bytes(b"%PDF-1.7 not a book at all")
    stored, jobs = objects(burst), _jobs()
    response = upload(client, auth, path)
    assert response.status_code == 422 and needle in response.json()["detail"], response.text
    assert objects(burst) == stored and _jobs() == jobs


def _jobs() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0
