"""The web page in process (TestClient; the browser test drives a real one): sign-in and its
session, CSRF on every form, the pages' checks, progress as JSON and as server-sent events,
and the offline /docs."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import ApiKey, Job, WebSession, utcnow

BOOK = "# One\n\nHello there. This is a test of the farm.\n\n# Two\n\nThe end is near."


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture()
def key(farm_settings):
    with session_scope() as session:
        _, key = create_key(session, "acme")
    return key


def sign_in(client, key: str):
    page = client.get("/")
    assert page.status_code == 200 and 'name="key"' in page.text
    return client.post(
        "/sign-in", data={"key": key, "csrf": _csrf(page.text)}, follow_redirects=False
    )


def test_sign_in_gives_an_httponly_strict_session_and_never_shows_the_key(client, key):
    signed = sign_in(client, key)
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = signed.headers["set-cookie"]
    assert "lyre_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert key not in cookie
    home = client.get("/")
    assert "Signed in as" in home.text and key not in home.text
    assert "default-src 'self'" in home.headers["content-security-policy"]


def test_a_wrong_key_or_a_forged_form_is_refused_on_the_page(client, key):
    page = client.get("/")
    wrong = client.post("/sign-in", data={"key": "lyre_nope", "csrf": _csrf(page.text)})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    forged = client.post("/sign-in", data={"key": key, "csrf": "made-up"})
    assert forged.status_code == 403 and "lyre_session" not in forged.headers.get("set-cookie", "")
    sign_in(client, key)
    home = client.get("/")
    no_token = client.post("/jobs", files={"text": (None, BOOK)}, follow_redirects=False)
    assert no_token.status_code == 403 and "expired" in no_token.text
    other_site = client.post(
        "/jobs",
        files={"text": (None, BOOK), "csrf": (None, _csrf(home.text))},
        headers={"Origin": "https://evil.example"},
    )
    assert other_site.status_code == 403


def test_submit_watch_and_redo_from_the_page(client, key, burst):
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    made = client.post(
        "/jobs",
        files={
            "text": (None, BOOK),
            "title": (None, "Two chapters"),
            "csrf": (None, csrf),
            "lexicon": (None, "farm = fahrm"),
            "read_along": (None, "1"),
        },
        follow_redirects=False,
    )
    assert made.status_code == 303
    url = made.headers["location"]
    job_id = url.rsplit("/", 1)[-1]
    with session_scope() as session:  # the box ticked: a read-along EPUB too
        assert session.get(Job, job_id).mastering["read_along"] is True
    progress = client.get("/progress", params={"job": job_id}).json()["jobs"][0]
    assert progress["status"] == "queued" and [c["total"] for c in progress["chapters"]] == [2, 2]
    burst.drain()
    page = client.get(url)
    assert (
        page.status_code == 200 and "Play chapter 2" in page.text and "Redo chapter 1" in page.text
    )
    assert "This is a test of the farm." in page.text  # the text as written, for the redo form
    assert "Read-along book (EPUB)" in page.text  # the box ticked: the EPUB is a file of the job
    shelf = client.get(f"/jobs/{job_id}/library.zip")  # the page's link: the session's tenant
    assert shelf.status_code == 200 and shelf.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(shelf.content)).namelist()
    assert "Unknown Author/Two chapters/Two chapters.mp3" in names
    assert "Unknown Author/Two chapters/Two chapters.epub" in names
    stream = client.get("/live", params={"job": job_id})
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert '"status": "succeeded"' in stream.text and "event: end" in stream.text
    redo = client.post(
        f"{url}/chapters/2/redo",
        data={"text": "The end is here.", "csrf": csrf},
        follow_redirects=False,
    )
    assert redo.status_code == 303
    assert client.get("/progress", params={"job": job_id}).json()["jobs"][0]["version"] == 2


def test_bad_input_is_a_message_on_the_page(client, key, farm_settings):
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    empty = client.post("/jobs", files={"text": (None, "  "), "csrf": (None, csrf)})
    assert empty.status_code == 422 and "the text is empty" in empty.text
    lexicon = client.post(
        "/jobs", files={"text": (None, BOOK), "csrf": (None, csrf), "lexicon": (None, "oops")}
    )
    assert lexicon.status_code == 422 and "word = respelling" in lexicon.text
    assert "oops" in lexicon.text  # the form as it was filled in
    junk = client.post(
        "/jobs", files={"file": ("book.epub", b"PK\x03\x04 not a zip"), "csrf": (None, csrf)}
    )
    assert (
        400 <= junk.status_code < 500
        and 'role="alert"' in junk.text
        and "Traceback" not in junk.text
    )
    missing = client.get("/jobs/not-a-job")
    assert missing.status_code == 404


def test_sign_out_ends_the_session(client, key):
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    out = client.post("/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert 'name="key"' in client.get("/").text
    assert client.get("/progress").status_code == 401


def test_docs_are_served_from_the_api(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    bundle = client.get("/static/swagger/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000


def test_an_oversized_upload_is_refused_before_it_is_read(client, key, burst):
    burst.farm.settings.farm.max_upload_bytes = 10_000
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    big = client.post(
        "/jobs", files={"file": ("big.txt", b"Words. " * 5_000), "csrf": (None, csrf)}
    )
    assert big.status_code == 413 and "larger than this farm accepts" in big.text
    with burst.farm.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_a_revoked_key_or_an_old_session_signs_the_browser_out(client, key):
    sign_in(client, key)
    assert "Signed in as" in client.get("/").text
    with session_scope() as session:
        session.execute(update(ApiKey).values(revoked_at=utcnow()))
    assert 'name="key"' in client.get("/").text
    with session_scope() as session:
        session.execute(update(ApiKey).values(revoked_at=None))
    assert "Signed in as" in client.get("/").text
    with session_scope() as session:
        session.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert 'name="key"' in client.get("/").text
    stored = client.cookies.get("lyre_session")
    with session_scope() as session:  # the browser's token is not what the database keeps
        assert session.scalar(select(WebSession.token_hash)) != stored


def test_cancel_and_delete_from_the_job_page(client, key, burst):
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    made = client.post(
        "/jobs", files={"text": (None, BOOK), "csrf": (None, csrf)}, follow_redirects=False
    )
    url = made.headers["location"]
    assert 'action="' + url + '/cancel"' in client.get(url).text
    cancelled = client.post(f"{url}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert cancelled.status_code == 303
    assert "cancelled" in client.get(url).text
    again = client.post(f"{url}/cancel", data={"csrf": csrf})
    assert again.status_code == 409 and "already ended" in again.text  # shown on its page
    deleted = client.post(f"{url}/delete", data={"csrf": csrf}, follow_redirects=False)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/"
    assert client.get(url).status_code == 404
    with burst.farm.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_another_tenants_job_is_not_found(client, key, burst):
    with session_scope() as session:
        _, other_key = create_key(session, "globex")
    sign_in(client, other_key)
    csrf = _csrf(client.get("/").text)
    url = client.post(
        "/jobs", files={"text": (None, BOOK), "csrf": (None, csrf)}, follow_redirects=False
    ).headers["location"]
    client.post("/sign-out", data={"csrf": csrf})
    sign_in(client, key)
    mine = _csrf(client.get("/").text)
    assert client.get(url).status_code == 404
    assert client.post(f"{url}/delete", data={"csrf": mine}).status_code == 404
    assert client.get("/progress", params={"job": url.rsplit("/", 1)[-1]}).json() == {"jobs": []}
