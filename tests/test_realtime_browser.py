"""The try-it page's live captions in headless Chromium, with a fake microphone playing real speech."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.media import speech_samples, wav_bytes
from tests.support.nginx import require_tool
from tests.test_browser_ui import CHROMIUM_ARGS


@pytest.fixture(scope="module")
def microphone(tmp_path_factory: pytest.TempPathFactory, audio_dir: Path) -> Path:
    speech = speech_samples((audio_dir / "jfk.flac").read_bytes())
    path = tmp_path_factory.mktemp("mic") / "jfk.wav"
    path.write_bytes(wav_bytes(np.concatenate([speech, np.zeros(16_000 * 2, dtype=np.float32)])))
    return path


@pytest.fixture(scope="module")
def browser(microphone: Path) -> Iterator[object]:
    executable = require_tool("chromium", "/usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={microphone}",
        "--autoplay-policy=no-user-gesture-required",
    ]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def test_live_captions_show_what_the_microphone_hears(browser, server_url: str) -> None:  # noqa: ANN001
    context = browser.new_context(permissions=["microphone"])
    try:
        page = context.new_page()
        page.goto(server_url + "/")
        page.wait_for_selector("#model option[value='tiny.en']", state="attached")
        page.select_option("#model", "tiny.en")
        page.click("#live")
        page.wait_for_function(
            "document.querySelector('#captions').innerText.toLowerCase().includes('your country')",
            timeout=90_000,
        )
        page.wait_for_selector("#captions p.final", timeout=30_000)
        page.click("#live")  # stop
        assert page.inner_text("#live") == "Start live captions"
        finals = " ".join(page.locator("#captions p.final").all_inner_texts())
        assert "your country can do for you" in finals.lower().replace(",", "")
    finally:
        context.close()
