"""The web page in a real browser: Debian's Chromium driven by Playwright (no browser is
downloaded: `make browser` installs the system's), against the native farm speaking with
espeak, whose every first take loops (faults on demand, one take a chunk: each chunk needs a
listen). One walk through what a person does — sign in, upload a book, watch it, listen,
download, fix a chapter, hear a chunk that needs a listen and fix it, sign out — with the
page's refusals and the offline /docs on the way.

Screenshots at desktop and phone widths are saved to ``test-artifacts/browser/``.
"""

from __future__ import annotations

import io
import re
import shutil
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from mutagen.mp4 import MP4

from tests.books import Chapter, make_epub
from tests.e2e.conftest import RunningFarm

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
UPLOAD_LIMIT = 300_000  # bytes: small, so that the test's oversized upload is quick to make
WAIT_MS = 90_000  # for the farm to make a small book


@pytest.fixture(scope="module")
def farm(process_env, tmp_path_factory) -> Iterator[RunningFarm]:
    """The api, the dispatcher and one worker of each kind the book needs, started at once."""
    env = {
        **process_env,
        "LYRE_ENGINE": "espeak",
        "LYRE_FARM__MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
        "LYRE_FAULTS__RATE": "1.0",
        "LYRE_FAULTS__KINDS": '["loop"]',
        "LYRE_CHECKS__TAKES": "1",
    }
    running = RunningFarm(env, tmp_path_factory.mktemp("browser-farm"))
    names = ["api", "dispatcher", "gpu-worker", "cpu-worker", "stitch-worker"]
    try:
        running.start_at_once(names)
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's Chromium is not installed: run `make browser`")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--mute-audio"])
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, farm):
    context = browser.new_context(viewport=DESKTOP, base_url=farm.api, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    hosts: set[str] = set()
    paths: list[str] = []
    page.on("request", lambda request: hosts.add(urlsplit(request.url).hostname or ""))
    page.on("request", lambda request: paths.append(urlsplit(request.url).path))
    page.hosts, page.paths = hosts, paths
    yield page
    context.close()


def shoot(page, name: str) -> None:
    """The page at desktop width and at a phone's, which must not scroll sideways."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}-desktop.png", full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=ARTIFACTS / f"{name}-phone.png", full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name}: {width} px wide on a {PHONE['width']} px phone"
    page.set_viewport_size(DESKTOP)


def unlabelled(page) -> list[str]:
    """Form controls a screen reader would announce without a name."""
    return page.evaluate(
        """[...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
             .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                           && !el.textContent.trim())
             .map(el => el.outerHTML)"""
    )


def until(page, expression: str, timeout_s: float = WAIT_MS / 1000) -> None:
    """Poll a page's expression from here: the page's CSP (rightly) refuses the string
    evaluation of Playwright's own wait_for_function."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(100)


def wait_for_status(page, status: str) -> None:
    page.locator(".card [data-status]").first.filter(has_text=status).wait_for()


def key_of(farm: RunningFarm) -> str:
    return farm.headers["Authorization"].removeprefix("Bearer ")


def test_a_person_makes_a_book_listens_fixes_a_chapter_and_signs_out(page, farm, tmp_path):
    page.goto("/")
    assert page.get_by_label("API key").is_visible()
    assert page.evaluate("document.activeElement.id") == "key"  # ready to paste into
    page.get_by_label("API key").fill("lyre_not-a-key")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.get_by_role("alert").inner_text()
    shoot(page, "sign-in-refused")

    page.get_by_label("API key").fill(key_of(farm))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()
    assert key_of(farm) not in page.content()
    cookie = next(c for c in page.context.cookies() if c["name"] == "lyre_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert unlabelled(page) == []
    page.keyboard.press("Tab")  # the first stop skips the header
    assert page.evaluate("document.activeElement.className") == "skip"

    # a file over the farm's limit: a message, and the form as it was (the page checks before
    # sending it; tests/integration/test_web.py has the server's own refusal)
    big = tmp_path / "big.txt"
    big.write_text("A long sentence for a large file. " * (UPLOAD_LIMIT // 30))
    page.get_by_label("Title").fill("Too big")
    page.get_by_label("Or a file").set_input_files(big)
    page.get_by_role("button", name="Make the audio").click()
    assert "larger than this farm accepts" in page.locator("#file-problem").inner_text()
    assert page.url.endswith("/")  # not sent
    assert page.get_by_label("Title").input_value() == "Too big"

    # listen to a voice before choosing it
    page.get_by_label("Voice").select_option("leah")
    page.get_by_role("link", name="Listen to this voice").click()
    until(page, "document.getElementById('sample').duration > 0.5")

    # what will be said, before anything is made: the lexicon's respelling, beside the words
    page.get_by_label("Or a file").set_input_files([])  # the one too big, chosen above
    page.get_by_label("Text", exact=True).fill("At night the lamp turned.")
    page.get_by_label("Lexicon").fill("lamp = lammp")
    page.get_by_role("button", name="Preview what will be said").click()
    page.get_by_role("heading", name="What will be said").wait_for()
    assert page.locator(".preview .said").all_inner_texts() == ["At night the lammp turned."]
    shoot(page, "preview")
    assert page.locator(".preview .written").all_inner_texts() == ["At night the lamp turned."]
    assert page.get_by_label("Text", exact=True).input_value() == "At night the lamp turned."
    page.get_by_label("Text", exact=True).fill("")

    book = make_epub(
        tmp_path / "small.epub",
        [
            Chapter("The Harbour", ["The harbour was quiet in the early morning."]),
            Chapter("The Storm", ["By noon the wind had turned.", "Rain came in sheets."]),
            Chapter("The Lamp", ["At night the lamp turned, as it always had."]),
        ],
        title="A Small Book",
    )
    page.get_by_label("Title").fill("")
    page.get_by_label("Or a file").set_input_files(book)
    page.get_by_label("Format").select_option("m4b")
    page.get_by_label("A read-along EPUB too").check()
    page.get_by_label("Lexicon").fill("lamp = lammp")
    # server-sent events kept from getting through (as by a buffering proxy): the page polls
    page.route("**/live*", lambda route: route.abort())
    page.get_by_role("button", name="Make the audio").click()
    page.get_by_role("heading", name="A Small Book").wait_for()
    loaded_running = page.locator(".card [data-status]").first.inner_text() != "succeeded"
    wait_for_status(page, "succeeded")  # the page then reloads with the player and files
    assert "/progress" in page.paths or not loaded_running
    page.unroute("**/live*")
    page.get_by_role("button", name="Play chapter 2: The Storm").wait_for()
    assert page.locator(".chapters [data-state=done]").count() == 3
    cost = page.locator("[data-cost]").inner_text()  # what the job cost, as the API says
    said = httpx.get(f"{farm.api}/v1/jobs?limit=1", headers=farm.headers).json()["items"][0]
    assert f"{said['cost']['engine_s']:.1f} s of the speech engine" in cost
    shoot(page, "job")

    page.get_by_role("button", name="Play chapter 2: The Storm").click()
    assert page.locator("#now-playing").inner_text() == "2. The Storm"
    until(page, "document.getElementById('player').currentTime > 0.2")
    assert "chapter-002" in page.evaluate("document.getElementById('player').currentSrc")

    with page.expect_download() as downloaded:
        page.get_by_role("link", name=re.compile(r"^Programme.*\(M4B\)")).click()
    m4b = MP4(io.BytesIO(Path(downloaded.value.path()).read_bytes()))
    assert m4b.info.length > 3 and [c.title for c in m4b.chapters] == [
        "The Harbour",
        "The Storm",
        "The Lamp",
    ]
    with page.expect_download() as downloaded:  # the book for a library server's folder
        page.get_by_role("link", name=re.compile("^For a library server")).click()
    shelf = zipfile.ZipFile(downloaded.value.path()).namelist()
    assert downloaded.value.suggested_filename == "A Small Book.zip"
    assert "Ada Writer/A Small Book/A Small Book.epub" in shelf  # the box was ticked

    page.get_by_text("Chapter 3: The Lamp").last.click()  # opens its redo form
    page.get_by_label("Text of chapter 3").fill(
        "At night the lamp turned, and the ships came home."
    )
    page.paths.clear()
    page.get_by_role("button", name="Redo chapter 3").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+$"))
    loaded_running = page.locator(".card [data-status]").first.inner_text() == "running"
    wait_for_status(page, "succeeded")
    if loaded_running:  # it was followed live, over server-sent events this time
        assert "/live" in page.paths and "/progress" not in page.paths
    page.get_by_role("button", name="Play chapter 3: The Lamp").wait_for()
    status = httpx.get(f"{farm.api}/v1/jobs?limit=1", headers=farm.headers).json()["items"][0]
    assert status["version"] == 2 and status["outputs_version"] == 2

    # every chunk's one take looped: the page lists them; hear one, then make it again
    page.reload()  # as the job now is (the redo forms come with a finished job)
    listen = page.get_by_role("region", name="Needs a listen")
    suspects = listen.locator("li").count()
    assert suspects >= 6 and "too long: " in listen.inner_text()
    page.evaluate("document.querySelector('[data-suspects] audio').play()")
    until(page, "document.querySelector('[data-suspects] audio').currentTime > 0.2")
    first = listen.locator("summary").first
    number = first.inner_text().removeprefix("Redo chunk ")
    first.click()
    page.get_by_role("button", name=f"Redo chunk {number}").click()
    page.wait_for_url(re.compile(r"/jobs/[0-9a-f-]+$"))
    wait_for_status(page, "succeeded")
    page.reload()  # the list is the files' (the last version's) until the new ones are made
    assert listen.locator("li").count() == suspects - 1  # its next take is the engine's own
    assert page.get_by_role("button", name=f"Redo chunk {number}").count() == 0
    shoot(page, "needs-a-listen")

    page.get_by_role("link", name=re.compile("Your jobs")).click()
    page.locator(".jobs [data-status]").first.filter(has_text="succeeded").wait_for()
    usage = page.get_by_role("region", name="Your usage")
    today = httpx.get(f"{farm.api}/v1/usage", headers=farm.headers).json()["total"]
    total = usage.get_by_role("row").last.inner_text().split()
    assert total[:2] == ["Total", str(today["characters"])]
    shoot(page, "jobs")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("API key").wait_for()
    assert page.request.get("/progress").status == 401
    assert page.hosts <= {"127.0.0.1"}, f"the page loaded from {page.hosts}"


def test_the_api_reference_renders_with_no_internet(page):
    page.goto("/docs")
    page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/jobs").first.wait_for()
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Lyre")
    shoot(page, "docs")
    assert page.hosts <= {"127.0.0.1"}, f"/docs loaded from {page.hosts}"
