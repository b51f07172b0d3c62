"""The real server driven by raw HTTP: curl's multipart, chunked uploads, oversize bodies."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.text import JFK_REFERENCE, word_errors

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def curl(url: str, *form: str) -> subprocess.CompletedProcess[bytes]:
    args = ["curl", "-sS", "-w", "\n%{http_code} %{content_type}"]
    for field in form:
        args += ["-F", field]
    return subprocess.run([*args, url], capture_output=True, check=True, timeout=120)


def split(result: subprocess.CompletedProcess[bytes]) -> tuple[str, int, str]:
    body, _, status_line = result.stdout.decode().rpartition("\n")
    status, _, content_type = status_line.partition(" ")
    return body, int(status), content_type


def test_curl_typical_json(server_url: str, audio_dir: Path) -> None:
    body, status, content_type = split(
        curl(
            f"{server_url}/v1/audio/transcriptions", f"file=@{audio_dir / 'jfk.flac'}", "model=whisper-1"
        )  # fmt: skip
    )
    assert status == 200 and content_type == "application/json; charset=utf-8"
    assert word_errors(JFK_REFERENCE, json.loads(body)["text"]) <= 2


def test_curl_text_format_is_raw(server_url: str, audio_dir: Path) -> None:
    body, status, content_type = split(
        curl(
            f"{server_url}/v1/audio/transcriptions",
            f"file=@{audio_dir / 'jfk.flac'}",
            "model=whisper-1",
            "response_format=text",
        )  # fmt: skip
    )
    assert status == 200 and content_type == "text/plain; charset=utf-8"
    assert not body.startswith('"') and word_errors(JFK_REFERENCE, body) <= 2


def test_curl_bare_granularity_name(server_url: str, audio_dir: Path) -> None:
    body, status, _ = split(
        curl(
            f"{server_url}/v1/audio/transcriptions",
            f"file=@{audio_dir / 'jfk.flac'}",
            "model=whisper-1",
            "response_format=verbose_json",
            "timestamp_granularities=word",
        )  # fmt: skip
    )
    assert status == 200 and json.loads(body)["words"][0]["word"] == "And"


def test_curl_missing_file_is_openai_400(server_url: str) -> None:
    body, status, content_type = split(curl(f"{server_url}/v1/audio/transcriptions", "model=whisper-1"))
    assert status == 400 and content_type == "application/json; charset=utf-8"
    assert json.loads(body)["error"]["param"] == "file"


def _multipart(boundary: str, audio: bytes) -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="unknown_file"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + audio
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_chunked_upload_without_content_length(server_url: str, jfk_bytes: bytes) -> None:
    """node's SDK streams fs.createReadStream uploads with Transfer-Encoding: chunked."""
    boundary = "openai-" + uuid.uuid4().hex
    response = requests.post(
        f"{server_url}/v1/audio/transcriptions",
        data=_chunks(_multipart(boundary, jfk_bytes)),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200
    assert word_errors(JFK_REFERENCE, response.json()["text"]) <= 2


def test_over_25_mib_is_413_in_openai_shape(server_url: str) -> None:
    boundary = uuid.uuid4().hex
    body = _multipart(boundary, b"\0" * (26 * 1024 * 1024))
    response = requests.post(
        f"{server_url}/v1/audio/transcriptions",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["error"]["message"].startswith("Maximum content size limit")


def test_chunked_oversize_body_is_413(server_url: str) -> None:
    boundary = uuid.uuid4().hex
    response = requests.post(
        f"{server_url}/v1/audio/transcriptions",
        data=_chunks(_multipart(boundary, b"\0" * (26 * 1024 * 1024)), 1024 * 1024),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert response.status_code == 413
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}
