"""Per-request log line, request ids and trusted-proxy handling (web layer, fake transcriber)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask.testing import FlaskClient

from tests.support.fakes import fake_loader
from tests.support.longaudio import jfk_wav
from whisper_api.config import Settings
from whisper_api.web import create_app


def _transcribe(client: FlaskClient, jfk_bytes: bytes, **headers: str):
    response = client.post(
        "/v1/audio/transcriptions",
        data={
            "model": "whisper-1",
            "file": (io.BytesIO(jfk_wav(jfk_bytes)), "jfk.wav"),
            "prompt": "secret words",
        },
        headers={"Authorization": "Bearer sk-very-secret", **headers},
    )
    response.close()  # the log line is written when the server closes the response
    return response


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "whisper_api.access"]


def test_each_request_logs_one_json_line_with_its_facts(
    client: FlaskClient, jfk_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whisper_api.access")
    response = _transcribe(client, jfk_bytes)
    (line,) = _lines(caplog)
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["endpoint"] == "/v1/audio/transcriptions"
    assert line["status"] == 200
    assert line["model"] == "base"
    assert line["audio_seconds"] == pytest.approx(11.0, abs=0.05)
    assert line["processing_ms"] > 0
    assert line["client"] == "127.0.0.1"


def test_request_log_holds_no_text_prompt_or_key(
    client: FlaskClient, jfk_bytes: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = _transcribe(client, jfk_bytes)
    assert "Grüße" in response.get_data(as_text=True)  # the fake's transcript, which must not be logged
    logged = caplog.text
    for secret in ("Grüße", "secret words", "sk-very-secret", "Bearer"):
        assert secret not in logged


def test_a_plain_incoming_request_id_is_kept(client: FlaskClient) -> None:
    response = client.get("/v1/models", headers={"X-Request-Id": "lb-7f3a.42"})
    response.close()
    assert response.headers["x-request-id"] == "lb-7f3a.42"


def test_a_strange_incoming_request_id_is_replaced(client: FlaskClient) -> None:
    response = client.get("/v1/models", headers={"X-Request-Id": "<script>" + "x" * 300})
    assert response.headers["x-request-id"].startswith("req_")


def test_text_log_format_writes_key_value_pairs(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(model="base", log_format="text"), loader=fake_loader({}))
    caplog.set_level(logging.INFO, logger="whisper_api.access")
    app.test_client().get("/v1/models").close()
    (record,) = [r for r in caplog.records if r.name == "whisper_api.access"]
    assert 'endpoint="/v1/models"' in record.getMessage()
    assert "status=200" in record.getMessage()


def test_forwarded_headers_are_ignored_without_a_trusted_proxy(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="whisper_api.access")
    page = client.get("/", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Prefix": "/whisper"})
    page.close()
    assert 'data-api-base="/v1"' in page.get_data(as_text=True)
    assert _lines(caplog)[0]["client"] == "127.0.0.1"


def test_forwarded_headers_are_honoured_behind_a_trusted_proxy(caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(Settings(model="base", trusted_proxies=1), loader=fake_loader({}))
    caplog.set_level(logging.INFO, logger="whisper_api.access")
    page = app.test_client().get(
        "/", headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Prefix": "/whisper"}
    )
    page.close()
    assert 'data-api-base="/whisper/v1"' in page.get_data(as_text=True)
    assert _lines(caplog)[0]["client"] == "203.0.113.7"
