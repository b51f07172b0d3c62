"""Configurable aliases: OpenAI names mapped to local models (web layer, fake transcriber)."""

from __future__ import annotations

import io

import pytest

from tests.support.fakes import FakeTranscriber, fake_loader
from whisper_api.config import Settings
from whisper_api.web import create_app

ALIASES = ("whisper-1=tiny.en", " gpt-4o-mini-transcribe = tiny.en ")


@pytest.fixture
def fakes() -> dict[str, FakeTranscriber]:
    return {}


@pytest.fixture
def aliased(fakes: dict[str, FakeTranscriber]):  # noqa: ANN201 - FlaskClient
    return create_app(Settings(model="base", model_aliases=ALIASES), loader=fake_loader(fakes)).test_client()


def transcribe(client, model: str, audio: bytes) -> str:  # noqa: ANN001 - FlaskClient
    data = {"model": model, "file": (io.BytesIO(audio), "jfk.wav")}
    response = client.post("/v1/audio/transcriptions", data=data, content_type="multipart/form-data")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["text"]


def test_configured_aliases_reach_their_model(aliased, fakes, jfk_wav: bytes) -> None:  # noqa: ANN001
    transcribe(aliased, "whisper-1", jfk_wav)
    transcribe(aliased, "gpt-4o-mini-transcribe", jfk_wav)
    assert list(fakes) == ["tiny.en"]
    assert len(fakes["tiny.en"].calls) == 2


def test_openai_names_not_configured_serve_the_default_model(aliased, fakes, jfk_wav: bytes) -> None:  # noqa: ANN001
    transcribe(aliased, "gpt-4o-transcribe", jfk_wav)
    assert list(fakes) == ["base"]


def test_model_listing_names_what_serves_each_alias(aliased) -> None:  # noqa: ANN001
    models = {m["id"]: m for m in aliased.get("/v1/models").get_json()["data"]}
    assert models["whisper-1"]["root"] == "tiny.en" and models["whisper-1"]["multilingual"] is False
    assert models["gpt-4o-transcribe"]["root"] == "base"
    assert set(models["whisper-1"]) == {"id", "object", "created", "owned_by", "root", "multilingual", "kind"}


def test_a_malformed_alias_stops_the_server_at_start() -> None:
    with pytest.raises(ValueError, match="WHISPER_API_MODEL_ALIASES"):
        create_app(Settings(model_aliases=("whisper-1",)), loader=fake_loader({}))
