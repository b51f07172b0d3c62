"""Optional API keys: off by default; on, a missing or wrong key is a 401 in OpenAI's shape."""

from __future__ import annotations

import contextlib
import io
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import requests
from flask.testing import FlaskClient

from tests.support.fakes import fake_loader
from tests.support.media import wav_bytes
from tests.support.server import ServerProcess, worker_pids
from whisper_api.config import Settings
from whisper_api.web import create_app
from whisper_api.web.auth import KeyChecker, masked

KEY_A = "sk-test-alpha-0123456789abcdef"
KEY_B = "sk-test-bravo-fedcba9876543210"
SHORT_WAV = wav_bytes(np.full(16_000, 0.1, dtype=np.float32))


def _client(fakes, **settings) -> FlaskClient:
    return create_app(Settings(model="base", **settings), loader=fake_loader(fakes)).test_client()


def _transcribe(client: FlaskClient, headers: dict[str, str] | None = None):
    return client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1", "file": (io.BytesIO(SHORT_WAV), "a.wav")},
        headers=headers or {},
    )


def test_without_configured_keys_no_key_is_needed(fakes) -> None:
    assert _transcribe(_client(fakes)).status_code == 200


def test_missing_key_is_401_with_openais_message_and_null_code(fakes) -> None:
    response = _transcribe(_client(fakes, api_keys=(KEY_A,)))
    assert response.status_code == 401
    error = response.json["error"]
    assert error["type"] == "invalid_request_error"
    assert error["code"] is None and error["param"] is None
    assert error["message"].startswith("You didn't provide an API key.")


def test_wrong_key_is_401_invalid_api_key_without_echoing_it(fakes) -> None:
    wrong = "sk-wrong-key-0000000000000000"
    response = _transcribe(_client(fakes, api_keys=(KEY_A,)), {"Authorization": f"Bearer {wrong}"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_api_key"
    assert wrong not in response.get_data(as_text=True)


def test_any_of_several_keys_is_accepted(fakes) -> None:
    client = _client(fakes, api_keys=(KEY_A, KEY_B))
    for key in (KEY_A, KEY_B):
        assert _transcribe(client, {"Authorization": f"Bearer {key}"}).status_code == 200


def test_keys_file_adds_keys_and_skips_comments(fakes, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# team A\n{KEY_B}\n\n")
    client = _client(fakes, api_keys=(KEY_A,), api_keys_file=keys_file)
    assert _transcribe(client, {"Authorization": f"Bearer {KEY_B}"}).status_code == 200
    assert _transcribe(client, {"Authorization": f"Bearer {KEY_A}"}).status_code == 200
    assert _transcribe(client, {"Authorization": "Bearer # team A"}).status_code == 401


def test_azure_style_api_key_header_is_accepted(fakes) -> None:
    assert _transcribe(_client(fakes, api_keys=(KEY_A,)), {"api-key": KEY_A}).status_code == 200


def test_probes_and_the_api_description_need_no_key(fakes) -> None:
    client = _client(fakes, api_keys=(KEY_A,))
    client.application.extensions["whisper_api"].registry.get("base")
    for path in ("/health", "/ready", "/openapi.json"):
        assert client.get(path).status_code == 200, path


def test_model_listing_needs_a_key(fakes) -> None:
    assert _client(fakes, api_keys=(KEY_A,)).get("/v1/models").status_code == 401


def test_key_prefix_or_extension_is_not_accepted() -> None:
    checker = KeyChecker((KEY_A,))
    assert checker.accepts(KEY_A)
    assert not checker.accepts(KEY_A[:-1])
    assert not checker.accepts(KEY_A + "x")
    assert not checker.accepts("")


def test_wrong_key_is_shown_masked() -> None:
    assert masked("sk-abcdefghijklmnopxyz") == "sk-***xyz"
    assert masked("short") == "***"


@pytest.mark.parametrize(
    ("keys", "warned"),
    [(("abc",), True), (("sk-123456789012",), True), ((KEY_A, "short-key"), True), ((KEY_A, KEY_B), False)],
)
def test_a_key_shorter_than_16_characters_warns_at_start_without_showing_it(
    fakes, caplog: pytest.LogCaptureFixture, keys: tuple[str, ...], warned: bool
) -> None:
    with caplog.at_level("WARNING", logger="whisper_api.web.auth"):
        client = _client(fakes, api_keys=keys)
    warnings = [r.getMessage() for r in caplog.records if r.name == "whisper_api.web.auth"]
    assert bool(warnings) == warned
    for key in keys:
        assert all(key not in message for message in warnings)
    assert _transcribe(client, {"Authorization": f"Bearer {keys[0]}"}).status_code == 200


# --- the real server and the OpenAI SDK -----------------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("keyed")
    keys_file = root / "keys"
    keys_file.write_text(KEY_B + "\n")
    env = {
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_API_KEYS": KEY_A,
        "WHISPER_API_KEYS_FILE": str(keys_file),
        "WHISPER_API_LOG_LEVEL": "debug",  # even the most talkative log keeps secrets out
    }
    server = ServerProcess(env, root / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def _sdk(server: ServerProcess, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=key, max_retries=0, timeout=120)


def test_sdk_with_a_wrong_key_raises_authentication_error(keyed_server: ServerProcess, jfk_bytes) -> None:
    with (
        _sdk(keyed_server, "sk-not-a-configured-key-123") as sdk,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        sdk.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes))
    assert caught.value.code == "invalid_api_key"


def test_sdk_with_a_key_from_the_file_transcribes(keyed_server: ServerProcess, jfk_bytes) -> None:
    with _sdk(keyed_server, KEY_B) as sdk:
        result = sdk.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes))
    assert "fellow americans" in result.text.lower()


def test_keys_and_transcripts_never_reach_the_log(keyed_server: ServerProcess, jfk_bytes) -> None:
    for key in (KEY_A, "sk-some-wrong-key-for-the-log-test"):
        with _sdk(keyed_server, key) as sdk, contextlib.suppress(openai.AuthenticationError):
            sdk.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes))
    log = keyed_server.log_path.read_text(errors="replace")
    assert "POST /v1/audio/transcriptions" in log  # the access log is there
    for secret in (KEY_A, KEY_B, "sk-some-wrong-key-for-the-log-test", "wrong-key"):
        assert secret not in log
    assert "americans" not in log.lower() and "your country" not in log.lower()


def test_keys_file_is_read_again_when_workers_are_reloaded(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(KEY_A + "\n")
    server = ServerProcess(
        {"WHISPER_MODEL": "tiny.en", "WHISPER_API_KEYS_FILE": str(keys_file)}, tmp_path / "server.log"
    ).start()
    try:

        def status(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            return requests.get(server.base_url + "/v1/models", headers=headers, timeout=30).status_code

        assert status(KEY_A) == 200
        keys_file.write_text(KEY_B + "\n")
        old_workers = worker_pids(server.process.pid)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 120
        while set(old_workers) & set(worker_pids(server.process.pid)) or status(KEY_B) != 200:
            assert time.monotonic() < deadline, "workers never picked up the new keys file"
            time.sleep(0.5)
        assert status(KEY_A) == 401
    finally:
        server.stop()
