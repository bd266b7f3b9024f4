"""What a job would say, before it is made: ``POST /v1/previews`` and the page's preview,
through the same intake as a job, with the tenant's and the request's lexicons; nothing is
stored and no characters are counted."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.farm.tenants import create_key
from shared.infra.db import session_scope
from shared.infra.models import Job, TenantUsage
from tests.books import make_epub, three_chapter_book
from tests.integration.test_web import _csrf, sign_in

BOOK = "# One\n\nDr. Watson met Siobhan.\n\nleo: Hello there. <laugh> <shout>\n\n# Two\n\nThe end."


def _key() -> str:
    with session_scope() as session:
        _, key = create_key(session, "acme")
    return key


def _nothing_stored() -> bool:
    with session_scope() as session:
        jobs = session.scalar(select(func.count()).select_from(Job))
        used = session.scalar(select(func.count()).select_from(TenantUsage))
    return jobs == 0 and used == 0


def test_a_preview_is_each_chunk_as_the_engine_will_say_it(client):
    auth = {"Authorization": f"Bearer {_key()}"}
    client.put("/v1/lexicon", json={"entries": {"watson": "wot-son"}}, headers=auth)
    body = {"text": BOOK, "lexicon": {"siobhan": "shiv-awn"}, "voice": "zoe"}
    response = client.post("/v1/previews", json=body, headers=auth)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["chapters"] == ["One", "Two"] and preview["engine"]
    lines = [(c["chapter"], c["voice"], c["said"]) for c in preview["chunks"]]
    assert lines == [
        (1, "zoe", "One"),
        (1, "zoe", "Doctor Wot-son met Shiv-awn."),  # the tenant's lexicon, the request's, "Dr."
        (1, "leo", "Hello there. <laugh>"),
        (2, "zoe", "Two"),
        (2, "zoe", "The end."),
    ]
    assert preview["chunks"][1]["written"] == "Dr. Watson met Siobhan."
    assert any("<shout>" in w for w in preview["warnings"])
    assert _nothing_stored()


def test_a_preview_of_an_epub_and_its_refusals_are_a_jobs(client, tmp_path):
    auth = {"Authorization": f"Bearer {_key()}"}
    epub = make_epub(tmp_path / "b.epub", three_chapter_book()).read_bytes()
    response = client.post("/v1/previews", files={"file": ("b.epub", epub)}, headers=auth)
    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["title"] == "A Small Book" and len(preview["chapters"]) == 3
    empty = client.post("/v1/previews", json={"text": "..."}, headers=auth)
    assert empty.status_code == 422 and "nothing to say" in empty.json()["detail"]
    assert _nothing_stored()


def test_the_page_shows_the_preview_under_the_form_it_came_from(client):
    sign_in(client, _key())
    csrf = _csrf(client.get("/").text)
    fields = {"text": (None, BOOK), "lexicon": (None, "siobhan = shiv-awn"), "csrf": (None, csrf)}
    page = client.post("/preview", files=fields)
    assert page.status_code == 200
    assert "What will be said" in page.text and "Doctor Watson met Shiv-awn." in page.text
    assert "Dr. Watson met Siobhan." in page.text  # as written, beside it, and in the form
    assert _nothing_stored()


def test_a_page_read_as_html_is_in_the_jobs_warnings_and_the_previews(client, tmp_path):
    auth = {"Authorization": f"Bearer {_key()}"}
    epub = make_epub(tmp_path / "m.epub", three_chapter_book(), malformed=True).read_bytes()
    files = {"file": ("m.epub", epub)}
    preview = client.post("/v1/previews", files=files, headers=auth).json()
    job = client.post("/v1/jobs", files=files, headers=auth).json()
    for warnings in (preview["warnings"], job["warnings"]):
        assert any("ch01.xhtml is not well-formed XHTML" in w for w in warnings), warnings
    assert len(preview["chapters"]) == len(job["chapters"]) == 3


SSML = (
    '<speak><p>Call <say-as interpret-as="telephone">555-0100</say-as>.</p>'
    '<break time="1.5s"/><voice name="onyx">Then <mark name="turn"/>me.</voice></speak>'
)


def test_ssml_through_the_api_and_the_page_and_its_refusal_with_line_and_column(client):
    key = _key()
    auth = {"Authorization": f"Bearer {key}"}
    preview = client.post("/v1/previews", json={"text": SSML}, headers=auth).json()
    lines = [(c["voice"], c["said"], c["pause_s"], c["marks"]) for c in preview["chunks"]]
    assert lines == [
        ("tara", "Call five five five, oh one oh oh.", None, []),
        ("leo", "Then me.", 1.5, ["turn"]),  # onyx is OpenAI's name for a Lyre voice
    ]
    bad = client.post("/v1/jobs", json={"text": "<speak>\n<p>Hi <audio src='x'/></p></speak>"},
                      headers=auth)  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("SSML line 2, column 7: <audio>")
    sign_in(client, key)
    csrf = _csrf(client.get("/").text)
    page = client.post("/preview", files={"text": (None, SSML), "csrf": (None, csrf)})
    assert page.status_code == 200 and "Call five five five, oh one oh oh." in page.text
    assert _nothing_stored()
