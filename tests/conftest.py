"""Shared fixtures: the app with a fake transcriber, and real servers driven by the OpenAI SDK."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.fakes import FakeTranscriber, fake_loader
from tests.support.media import speech_samples, wav_bytes
from tests.support.server import ROOT, ServerProcess
from whisper_api.config import Settings
from whisper_api.engine.locator import locate_model
from whisper_api.engine.types import ModelSearch
from whisper_api.web import create_app

AUDIO_DIR = Path(os.environ.get("WHISPER_API_TEST_AUDIO", ROOT.parent / "shared" / "audio"))


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not (AUDIO_DIR / "jfk.flac").is_file():
        pytest.fail(f"test audio not found in {AUDIO_DIR} (set WHISPER_API_TEST_AUDIO)")
    return AUDIO_DIR


@pytest.fixture(scope="session")
def jfk_bytes(audio_dir: Path) -> bytes:
    return (audio_dir / "jfk.flac").read_bytes()


@pytest.fixture(scope="session")
def jfk_wav(jfk_bytes: bytes) -> bytes:
    """jfk as 16 kHz mono WAV (352 kB: small enough for in-memory test requests)."""
    return wav_bytes(speech_samples(jfk_bytes))


# --- the web layer with a fake transcriber -------------------------------------------------------


@pytest.fixture
def fakes() -> dict[str, FakeTranscriber]:
    return {}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(model="base", max_upload_bytes=400_000)


@pytest.fixture
def app(settings: Settings, fakes: dict[str, FakeTranscriber]) -> Flask:
    return create_app(settings, loader=fake_loader(fakes))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- real servers ----------------------------------------------------------------------------------


def _serve(tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> Iterator[str]:
    log = tmp_path_factory.mktemp(name) / "server.log"
    server = ServerProcess(env, log).start()
    try:
        yield server.base_url
    finally:
        server.stop()


SLASHED_MODEL_ID = "acme/tiny-en"


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server on tiny.en (fast), one worker; also serves tiny.en as `acme/tiny-en`."""
    tiny = locate_model("tiny.en", ModelSearch(cache_dir=Settings().cache_dir))
    model_dir = tmp_path_factory.mktemp("models")
    (model_dir / "acme").mkdir()
    (model_dir / SLASHED_MODEL_ID).symlink_to(tiny.path, target_is_directory=True)
    env = {
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_MODEL_DIR": str(model_dir),
        "WHISPER_API_MODELS": SLASHED_MODEL_ID,
    }
    yield from _serve(tmp_path_factory, "tiny", env)


@pytest.fixture(scope="session")
def base_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server on the embedded default model (multilingual base)."""
    yield from _serve(tmp_path_factory, "base", {"WHISPER_MODEL": "base"})


@pytest.fixture(scope="session")
def ow_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real server on tiny.en under the openai-whisper engine, one worker."""
    env = {"WHISPER_MODEL": "tiny.en", "WHISPER_ENGINE": "openai-whisper"}
    yield from _serve(tmp_path_factory, "ow-tiny", env)


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="sk-local", max_retries=0, timeout=300)


@pytest.fixture(scope="session")
def openai_client(server_url: str) -> openai.OpenAI:
    return _client(server_url)


@pytest.fixture(scope="session")
def ow_openai_client(ow_server_url: str) -> openai.OpenAI:
    return _client(ow_server_url)


@pytest.fixture(scope="session")
def base_openai_client(base_server_url: str) -> openai.OpenAI:
    return _client(base_server_url)
