"""One reader for what a request sends in (``api.uploads``) and one intake for what it says
(``shared.farm.intake``): the API's multipart submit and the page's form refuse the same inputs
with the same status and message, and store nothing for them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import Job
from tests.integration.test_web import _csrf, sign_in

UPLOAD_LIMIT, TEXT_LIMIT = 20_000, 5_000
TEXT_TOO_LARGE = "the text is larger than this farm accepts (5 KB)"


@pytest.fixture()
def post(request, client, burst):
    """POST a form's parts to the API (``api``) or to the page, signed in (``page``)."""
    burst.farm.settings.farm.max_upload_bytes = UPLOAD_LIMIT
    burst.farm.settings.farm.max_input_bytes = TEXT_LIMIT
    with session_scope() as session:
        _, key = create_key(session, "acme")
    if request.param == "api":
        client.headers["Authorization"] = f"Bearer {key}"
        return lambda files, **kw: client.post("/v1/jobs", files=files, **kw)
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    return lambda files, **kw: client.post("/jobs", files={**files, "csrf": (None, csrf)}, **kw)


CASES = [
    ({"file": ("book.txt", b"")}, 422, "the file is empty"),
    ({"text": (None, "  \n ")}, 422, "the text is empty"),
    ({"text": (None, "... !!!")}, 422, "the input has nothing to say (no words)"),
    ({"text": (None, "Words. " * 1000)}, 413, TEXT_TOO_LARGE),
    ({"file": ("b.txt", b"Words. " * 4000)}, 413, "the file is larger than this farm accepts"),
    ({"file": ("b.txt", b"Words. " * 1000)}, 413, TEXT_TOO_LARGE),
    ({"file": ("book.epub", b"%PDF-1.7")}, 422, "not an EPUB: the file is not a zip archive"),
    ({"file": ("x.png", b"\x89PNG\r\n\x1a\n\0\0")}, 422, "neither text nor an EPUB: binary data"),
]


@pytest.mark.parametrize("post", ["api", "page"], indirect=True)
@pytest.mark.parametrize(("files", "status", "message"), CASES)
def test_the_api_and_the_page_refuse_alike(post, files, status, message):
    refused = post(files)
    assert refused.status_code == status and message in refused.text, refused.text[-2000:]
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 0


@pytest.mark.parametrize("post", ["api", "page"], indirect=True)
def test_a_request_declared_too_large_is_refused_before_it_is_read(post):
    files = {"text": (None, "Hello.")}
    refused = post(files, headers={"content-length": str(UPLOAD_LIMIT + 100_000)})
    assert refused.status_code == 413
    assert "the request is larger than this farm accepts (20 KB)" in refused.text


@pytest.mark.parametrize("post", ["api", "page"], indirect=True)
def test_a_form_that_cannot_be_parsed_is_refused_with_its_reason(post):
    nameless = b"--x\r\nContent-Disposition: form-data\r\n\r\nHello.\r\n--x--\r\n"
    broken = post({}, headers={"content-type": "multipart/form-data; boundary=x"}, content=nameless)
    assert broken.status_code == 400
    assert "the form could not be read: The Content-Disposition header field" in broken.text


@pytest.mark.parametrize("post", ["api"], indirect=True)
def test_a_json_body_without_a_length_is_read_no_further_than_the_limit(post, client):
    def body():
        yield b'{"text": "'
        for _ in range(100):
            yield b"Words. " * 1000

    refused = client.post("/v1/jobs", content=body(), headers={"content-type": "application/json"})
    assert refused.status_code == 413 and "the request is larger" in refused.text
