"""The chat endpoint's request handling (web layer, fake engine)."""

from __future__ import annotations

import base64

import pytest
from flask.testing import FlaskClient

from tests.support.fakes import fake_loader
from tests.support.media import speech_samples, wav_bytes
from tests.support.server import free_port
from whisper_api.config import Settings
from whisper_api.web import create_app

URL = "/v1/chat/completions"


@pytest.fixture(scope="module")
def short_wav(jfk_bytes: bytes) -> bytes:
    """The first 3 s of jfk (the fake-engine app accepts 400 kB bodies)."""
    return wav_bytes(speech_samples(jfk_bytes)[: 3 * 16_000])


def _audio_message(data: str, fmt: str = "wav") -> list[dict]:
    return [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": data, "format": fmt}}]}
    ]


def test_content_of_the_wrong_type_names_the_message_content(client: FlaskClient) -> None:
    response = client.post(URL, json={"model": "whisper-1", "messages": [{"role": "user", "content": 5}]})
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "messages[0].content"


def test_part_without_a_type_names_the_part(client: FlaskClient) -> None:
    body = {"model": "whisper-1", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    response = client.post(URL, json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["param"] == "messages[0].content[0].type"


def test_a_data_url_prefix_on_the_audio_is_tolerated(client: FlaskClient, short_wav: bytes) -> None:
    data = "data:audio/wav;base64," + base64.b64encode(short_wav).decode()
    response = client.post(URL, json={"model": "whisper-1", "messages": _audio_message(data)})
    assert response.status_code == 200
    assert response.get_json()["choices"][0]["message"]["content"] == "Grüße, erste Hälfte. 日本語の後半。"


def test_body_that_is_not_json_is_a_400(client: FlaskClient) -> None:
    response = client.post(URL, data="model=whisper-1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "invalid_request_error"


def test_unreachable_upstream_is_a_502_upstream_error(short_wav: bytes) -> None:
    settings = Settings(model="base", chat_upstream_base_url=f"http://127.0.0.1:{free_port()}/v1")
    client = create_app(settings, loader=fake_loader({})).test_client()
    data = base64.b64encode(short_wav).decode()
    response = client.post(URL, json={"model": "whisper-1", "messages": _audio_message(data)})
    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "upstream_error"
