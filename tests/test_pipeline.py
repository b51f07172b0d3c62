"""The pipeline's order: what can be refused without the audio is refused before it is decoded."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.support.media import encode, speech_samples
from tests.support.server import ServerProcess

TWENTY_MINUTES = 20 * 60


@pytest.fixture(scope="module")
def twenty_minutes_mp3(jfk_bytes: bytes) -> bytes:
    """Twenty minutes of real speech (JFK, tiled) as a small mp3: minutes of work if it were decoded."""
    samples = speech_samples(jfk_bytes)
    tiled = np.tile(samples, int(np.ceil(TWENTY_MINUTES * 16_000 / len(samples))))[: TWENTY_MINUTES * 16_000]
    return encode(tiled, "mp3", "libmp3lame")


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    log = tmp_path_factory.mktemp("pipeline") / "server.log"
    server = ServerProcess({"WHISPER_MODEL": "tiny.en"}, log).start()
    yield server
    server.stop()


def _post(
    server: ServerProcess, path: str, audio: bytes, request_id: str, **fields: str
) -> requests.Response:
    return requests.post(
        server.base_url + path,
        data={"model": "tiny.en", **fields},
        files={"file": ("long.mp3", audio)},
        headers={"X-Request-Id": request_id},
        timeout=300,
    )


def _log_line(server: ServerProcess, request_id: str) -> dict:
    time.sleep(0.3)
    (line,) = [
        json.loads(raw) for raw in server.log_path.read_text().splitlines() if f'"{request_id}"' in raw
    ]
    return line


def test_translation_on_an_english_only_model_is_refused_without_decoding(
    tiny_server: ServerProcess, twenty_minutes_mp3: bytes
) -> None:
    response = _post(tiny_server, "/v1/audio/translations", twenty_minutes_mp3, "it-en-only-translate")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"
    assert "English-only" in response.json()["error"]["message"]
    # No audio was decoded: the request log records audio seconds only once audio is decoded.
    assert "audio_seconds" not in _log_line(tiny_server, "it-en-only-translate")


def test_other_language_on_an_english_only_model_is_refused_without_decoding(
    tiny_server: ServerProcess, twenty_minutes_mp3: bytes
) -> None:
    response = _post(
        tiny_server, "/v1/audio/transcriptions", twenty_minutes_mp3, "it-en-only-de", language="de"
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "language"
    assert "audio_seconds" not in _log_line(tiny_server, "it-en-only-de")


def test_model_checks_come_before_the_audio_is_looked_at(tiny_server: ServerProcess) -> None:
    """Garbage audio with a request the model cannot serve: the model is named, not the file."""
    response = _post(tiny_server, "/v1/audio/translations", b"not audio at all", "it-en-only-garbage")
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


def test_an_unknown_model_is_a_404_before_the_audio_is_looked_at(tiny_server: ServerProcess) -> None:
    response = requests.post(
        tiny_server.base_url + "/v1/audio/transcriptions",
        data={"model": "no-such-model"},
        files={"file": ("a.wav", b"not audio at all")},
        timeout=60,
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_served_request_still_decodes(tiny_server: ServerProcess, audio_dir: Path) -> None:
    response = _post(
        tiny_server, "/v1/audio/transcriptions", (audio_dir / "jfk.flac").read_bytes(), "it-pipeline-ok"
    )
    assert response.status_code == 200
    assert "ask not what your country" in response.json()["text"].lower()
    assert _log_line(tiny_server, "it-pipeline-ok")["audio_seconds"] == pytest.approx(11.0, abs=0.1)
