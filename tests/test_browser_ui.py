"""The try-it page and /docs in headless Chromium (Debian's chromium driven by playwright).

Set WHISPER_API_SCREENSHOT=docs/ui-screenshot.png to refresh the screenshot kept in docs/.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.nginx import require_tool

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = require_tool("chromium", "/usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server_url: str):
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.requested = []
    page.on("request", lambda request: page.requested.append(request.url))
    page.answers = []
    page.on("response", lambda response: page.answers.append((response.url, response.headers)))
    yield page
    context.close()


def _only_from(server_url: str, urls: list[str]) -> list[str]:
    origin = urlsplit(server_url).netloc
    return [url for url in urls if not url.startswith(("data:", "blob:")) and urlsplit(url).netloc != origin]


def _drop_file(page, path: Path) -> None:
    """Drag-and-drop, as a user would from a file manager: a `drop` event carrying the file."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, {type: "audio/flac"}));
            return transfer;
        }""",
        [path.name, data],
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def test_page_transcribes_a_dropped_clip_as_a_stream(page, server_url: str, audio_dir: Path) -> None:
    page.goto(server_url + "/")
    page.wait_for_selector("#model option[value='tiny.en']", state="attached")
    page.select_option("#model", "tiny.en")
    _drop_file(page, audio_dir / "jfk.flac")
    page.check("#stream")
    page.click("#transcribe")
    page.wait_for_function(
        "document.querySelector('#status').textContent.startsWith('Done')", timeout=120_000
    )
    transcript = page.inner_text("#transcript").lower()
    assert "ask not what your country can do for you" in transcript.replace(",", "")
    (streamed,) = [h for url, h in page.answers if url.endswith("/v1/audio/transcriptions")]
    assert streamed["content-type"].startswith("text/event-stream")
    if os.environ.get("WHISPER_API_SCREENSHOT"):
        page.screenshot(path=os.environ["WHISPER_API_SCREENSHOT"], full_page=True)
    assert _only_from(server_url, page.requested) == []


def test_page_downloads_subtitles_as_srt(page, server_url: str, audio_dir: Path) -> None:
    page.goto(server_url + "/")
    page.wait_for_selector("#model option[value='tiny.en']", state="attached")
    page.select_option("#model", "tiny.en")
    page.set_input_files("#file", str(audio_dir / "jfk.flac"))
    with page.expect_download(timeout=120_000) as download_info:
        page.click("#download-srt")
    download = download_info.value
    text = Path(download.path()).read_text(encoding="utf-8")
    assert download.suggested_filename == "jfk.srt"
    assert text.startswith("1\n00:00:00,000 --> ")
    assert "ask not what your country" in text.lower()


def test_docs_page_renders_the_api_from_the_server_alone(page, server_url: str) -> None:
    page.goto(server_url + "/docs")
    # Swagger UI draws one block per operation of /openapi.json.
    page.wait_for_selector('[data-path="/v1/audio/transcriptions"]', timeout=30_000)
    page.wait_for_load_state("networkidle")
    assert server_url + "/openapi.json" in page.requested
    assert _only_from(server_url, page.requested) == []


def test_page_speaks_typed_text_with_a_chosen_voice(page, server_url: str) -> None:  # noqa: ANN001
    pytest.importorskip("piper", reason="text to speech needs requirements-speech.txt")
    page.goto(server_url + "/")
    page.wait_for_selector("#voice option[value='en_US-joe-medium']", state="attached")
    assert page.locator("#model option[value='tts-1']").count() == 0  # voices are not Whisper models
    page.select_option("#voice", "en_US-joe-medium")
    page.select_option("#speak-format", "wav")
    page.fill("#speak-text", "Hello from the try it page.")
    page.click("#speak")
    page.wait_for_function(
        "document.querySelector('#speak-status').textContent.startsWith('Done')", timeout=120_000
    )
    (answer,) = [h for url, h in page.answers if url.endswith("/v1/audio/speech")]
    assert answer["content-type"] == "audio/wav"
    # The browser itself decodes what it received: a second or more of sound.
    seconds = page.evaluate(
        """async () => {
            const blob = await (await fetch(document.querySelector('#player').src)).blob();
            const buffer = await new AudioContext().decodeAudioData(await blob.arrayBuffer());
            return buffer.duration;
        }"""
    )
    assert 1.0 < seconds < 6.0
    assert _only_from(server_url, page.requested) == []
