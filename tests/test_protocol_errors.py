"""Client mistakes at the HTTP level, on every endpoint of the real server: a 4xx with OpenAI's JSON.

Malformed chunked framing, transfer codings the server does not know, broken request lines and
headers, deep JSON and lone surrogates: none of them may answer 5xx or HTML, whether gunicorn
(before the app runs) or the app finds the mistake. The server keeps serving afterwards.
"""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.rawhttp import RawResponse, read_response

ENDPOINTS = [
    ("POST", "/v1/audio/transcriptions"),
    ("POST", "/v1/audio/translations"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/audio/speech"),
    ("GET", "/v1/models"),
    ("GET", "/v1/audio/voices"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/"),
]
_PART = b'--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--xyz--\r\n'

#: Chunked bodies whose framing is broken, each with a Transfer-Encoding: chunked head.
BAD_CHUNKS = {
    "size-not-hex": b"zz\r\n" + _PART + b"\r\n0\r\n\r\n",
    "negative-size": b"-5\r\n" + _PART,
    "size-with-space": b"1 0\r\n" + _PART,
    "missing-crlf-after-data": b"%x\r\n" % len(_PART) + _PART + b"XX0\r\n\r\n",
    "nul-in-trailer": b"%x\r\n" % len(_PART) + _PART + b"\r\n0\r\nX-Trailer: a\x00b\r\n\r\n",
    "bad-trailer-name": b"%x\r\n" % len(_PART) + _PART + b"\r\n0\r\nBad Trailer: x\r\n\r\n",
    "nul-in-extension": b"%x;a\x00=b\r\n" % len(_PART) + _PART + b"\r\n0\r\n\r\n",
}

#: Heads gunicorn refuses before the app runs (it used to answer some with 500/501 and HTML).
BAD_HEADS = {
    "unknown-transfer-coding": "Transfer-Encoding: foo\r\n",
    "unknown-coding-then-chunked": "Transfer-Encoding: foo, chunked\r\n",
    "chunked-twice": "Transfer-Encoding: chunked, chunked\r\n",
    "length-and-chunked": "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "length-not-a-number": "Content-Length: abc\r\n",
    "two-lengths": "Content-Length: 1\r\nContent-Length: 2\r\n",
    "space-in-header-name": "Bad Header: x\r\n",
    "folded-header": "X-A: a\r\n b\r\n",
    "nul-in-header": "X-A: a\x00b\r\n",
    "unknown-expectation": "Expect: teapot\r\nContent-Length: 1\r\n",
    "too-many-headers": "".join(f"X-{i}: y\r\n" for i in range(150)),
}


def send(base_url: str, data: bytes) -> RawResponse:
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        sock.sendall(data)
        return read_response(sock, timeout=60)


def head(method: str, path: str, extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{extra}\r\n".encode("latin-1")


def assert_client_error(answer: RawResponse, statuses: range = range(400, 500)) -> dict:
    assert answer.status in statuses, (answer.status, answer.body[:300])
    assert answer.headers["content-type"].startswith("application/json"), answer.body[:300]
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize("body", BAD_CHUNKS.values(), ids=BAD_CHUNKS.keys())
@pytest.mark.parametrize(("method", "path"), ENDPOINTS[:4], ids=[p for _, p in ENDPOINTS[:4]])
def test_malformed_chunked_body_is_a_400(server_url: str, method: str, path: str, body: bytes) -> None:
    kind = "multipart/form-data; boundary=xyz" if "/audio/tr" in path else "application/json"
    extra = f"Content-Type: {kind}\r\nTransfer-Encoding: chunked\r\n"
    assert_client_error(send(server_url, head(method, path, extra) + body))


@pytest.mark.parametrize("extra", BAD_HEADS.values(), ids=BAD_HEADS.keys())
@pytest.mark.parametrize(("method", "path"), ENDPOINTS, ids=[p for _, p in ENDPOINTS])
def test_malformed_head_is_a_4xx_with_json(server_url: str, method: str, path: str, extra: str) -> None:
    assert_client_error(send(server_url, head(method, path, extra) + b"x"))


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /health HTTP/9.9\r\nHost: t\r\n\r\n",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"G\x00T /health HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /health HTTP/1.1 extra\r\nHost: t\r\n\r\n",
    ],
    ids=["garbage", "http-9.9", "long-uri", "nul-in-method", "extra-token"],
)
def test_malformed_request_line_is_a_4xx_with_json(server_url: str, raw: bytes) -> None:
    assert_client_error(send(server_url, raw))


@pytest.mark.parametrize("script_name", ["/nope", "/health/x", "/v1/audio/transcriptions/"])
@pytest.mark.parametrize(("method", "path"), ENDPOINTS[4:8], ids=[p for _, p in ENDPOINTS[4:8]])
def test_a_script_name_header_is_ignored(server_url: str, method: str, path: str, script_name: str) -> None:
    for name in ("SCRIPT_NAME", "script_name", "Script-Name"):
        answer = send(server_url, head(method, path, f"{name}: {script_name}\r\n"))
        assert answer.status == 200, answer.body[:300]


def _chat(server_url: str, body: bytes, path: str = "/v1/chat/completions") -> RawResponse:
    extra = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return send(server_url, head("POST", path, extra) + body)


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_deeply_nested_json_is_a_400(server_url: str, depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    nested = opener * depth + "1" + closer * depth
    body = f'{{"model":"whisper-1","messages":[{{"role":"user","content":"hi","x":{nested}}}]}}'
    error = assert_client_error(_chat(server_url, body.encode()), range(400, 401))
    assert "nested" in error["message"]


@pytest.mark.parametrize(
    "body",
    [
        '{"model":"\\ud800","messages":[{"role":"user","content":"hi"}]}',
        '{"model":"whisper-1","messages":[{"role":"user","content":"hi \\udfff there"}]}',
        '{"model":"whisper-1","messages":[{"role":"user","content":[{"type":"text","text":"\\ud83d"}]}]}',
        '{"model":"whisper-1","messages":[{"role":"user","content":"hi","name":"\\udc00"}]}',
        '{"model":"whisper-1","\\ud800":1,"messages":[{"role":"user","content":"hi"}]}',
    ],
    ids=["model", "text", "text-part", "name", "key"],
)
def test_lone_surrogates_in_chat_are_a_400(server_url: str, body: str) -> None:
    assert_client_error(_chat(server_url, body.encode()), range(400, 401))


@pytest.mark.parametrize(
    "body",
    [
        '{"model":"tts-1","voice":"alloy","input":"hello \\ud800"}',
        '{"model":"\\udc00","voice":"alloy","input":"hello"}',
        '{"model":"tts-1","voice":"alloy","input":"hi","x":' + "[" * 5000 + "]" * 5000 + "}",
    ],
    ids=["input", "model", "deep"],
)
def test_speech_bodies_with_surrogates_or_deep_nesting_are_a_400(server_url: str, body: str) -> None:
    assert_client_error(_chat(server_url, body.encode(), "/v1/audio/speech"), range(400, 401))


def test_a_surrogate_pair_is_ordinary_text(server_url: str) -> None:
    body = '{"model":"whisper-1","messages":[{"role":"user","content":"smile \\ud83d\\ude00"}]}'
    answer = _chat(server_url, body.encode())
    assert answer.status == 200, answer.body[:300]
    json.loads(answer.body)


def test_the_server_keeps_serving_after_every_mistake(server_url: str) -> None:
    assert requests.get(server_url + "/health", timeout=5).status_code == 200
    assert requests.get(server_url + "/v1/models", timeout=5).status_code == 200
