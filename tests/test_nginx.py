"""The shipped nginx configuration in front of real servers, driven by the OpenAI SDK.

Two tiny.en servers trust one proxy (WHISPER_API_TRUSTED_PROXIES=1); one nginx forwards to the first
only, another load-balances over both. Both nginx instances serve the shipped root and /whisper/
prefix locations unchanged.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from tests.support.longaudio import repeated_wav
from tests.support.nginx import DEPLOY, Nginx, require_tool
from tests.support.server import ServerProcess

JFK = "ask not what your country can do for you"
TRUSTED = {"WHISPER_MODEL": "tiny.en", "WHISPER_API_TRUSTED_PROXIES": "1"}


def _normalised(text: str) -> str:
    return " ".join(text.lower().replace(",", " ").replace(".", " ").split())


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    servers: list[ServerProcess] = []
    try:
        for name in ("first", "second"):
            log = tmp_path_factory.mktemp(f"backend-{name}") / "server.log"
            servers.append(ServerProcess(TRUSTED, log).start())
        yield servers
    finally:
        for server in servers:
            server.stop()


def _nginx(tmp_path_factory: pytest.TempPathFactory, servers: list[ServerProcess]) -> Iterator[Nginx]:
    proxy = Nginx([f"127.0.0.1:{s.port}" for s in servers], tmp_path_factory.mktemp("nginx")).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture(scope="module")
def nginx(tmp_path_factory: pytest.TempPathFactory, backends: list[ServerProcess]) -> Iterator[Nginx]:
    yield from _nginx(tmp_path_factory, backends[:1])


@pytest.fixture(scope="module")
def balanced(tmp_path_factory: pytest.TempPathFactory, backends: list[ServerProcess]) -> Iterator[Nginx]:
    yield from _nginx(tmp_path_factory, backends)


def _sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-local", max_retries=0, timeout=300)


def test_sdk_transcribes_through_nginx_at_the_root(nginx: Nginx, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as audio:
        result = _sdk(nginx.base_url + "/v1").audio.transcriptions.create(model="whisper-1", file=audio)
    assert JFK in _normalised(result.text)


def test_sdk_transcribes_through_nginx_under_the_prefix(nginx: Nginx, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as audio:
        result = _sdk(nginx.base_url + "/whisper/v1").audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="text"
        )
    assert JFK in _normalised(result)


def test_pages_under_the_prefix_link_inside_the_prefix(nginx: Nginx) -> None:
    page = requests.get(nginx.base_url + "/whisper/", timeout=10).text
    docs = requests.get(nginx.base_url + "/whisper/docs", timeout=10).text
    asset = requests.get(nginx.base_url + "/whisper/static/ui/ui.js", timeout=10)
    assert 'data-api-base="/whisper/v1"' in page
    assert 'src="/whisper/static/ui/ui.js"' in page
    assert 'data-spec-url="/whisper/openapi.json"' in docs
    assert asset.status_code == 200


def test_prefix_without_trailing_slash_redirects_to_the_page(nginx: Nginx) -> None:
    response = requests.get(nginx.base_url + "/whisper", timeout=10, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/whisper/")


def test_twenty_megabyte_upload_passes_through_nginx(nginx: Nginx, jfk_bytes: bytes) -> None:
    # 11 s of speech then 100 s of silence, 48 kHz stereo: over 20 MB; VAD skips the silence quickly.
    wav = repeated_wav(jfk_bytes, 1, rate=48_000, channels=2, silence_after=100.0)
    assert len(wav) > 20_000_000
    result = _sdk(nginx.base_url + "/v1").audio.transcriptions.create(
        model="tiny.en",
        file=("long.wav", wav),
        response_format="verbose_json",
        extra_body={"vad_filter": "true"},
    )
    assert result.duration == pytest.approx(111.0, abs=0.5)
    assert JFK in _normalised(result.text)


def test_streamed_transcription_arrives_in_pieces_through_nginx(nginx: Nginx, jfk_bytes: bytes) -> None:
    wav = repeated_wav(jfk_bytes, 4)  # 44 s: two 30 s decoding windows, each sent when decoded
    stream = _sdk(nginx.base_url + "/v1").audio.transcriptions.create(
        model="tiny.en", file=("jfk4.wav", wav), stream=True
    )
    arrivals = [(time.monotonic(), event) for event in stream]
    done = arrivals[-1][1]
    # Events less than 0.1 s apart came in one burst; held back by the proxy, all would come in one.
    bursts = 1 + sum(1 for (a, _), (b, _) in zip(arrivals, arrivals[1:], strict=False) if b - a > 0.1)
    assert done.type == "transcript.text.done"
    assert bursts >= 2
    assert _normalised(done.text).count(JFK) >= 3


def test_nginx_spreads_requests_over_two_instances(
    balanced: Nginx, backends: list[ServerProcess], audio_dir: Path
) -> None:
    client = _sdk(balanced.base_url + "/v1")
    request_ids = []
    for _ in range(4):
        with (audio_dir / "jfk.flac").open("rb") as audio:
            raw = client.audio.transcriptions.with_raw_response.create(model="whisper-1", file=audio)
        assert JFK in _normalised(raw.parse().text)
        request_ids.append(raw.headers["x-request-id"])
    time.sleep(0.5)  # the log line is written once the response is closed
    served = [
        {
            json.loads(line)["request_id"]
            for line in s.log_path.read_text().splitlines()
            if line.startswith("{")
        }
        for s in backends
    ]
    assert all(served_here & set(request_ids) for served_here in served)
    assert set(request_ids) <= served[0] | served[1]


def test_upload_over_the_app_limit_gets_the_apps_413_through_nginx(nginx: Nginx) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        _sdk(nginx.base_url + "/v1").audio.transcriptions.create(
            model="tiny.en", file=("big.wav", b"\0" * 27_000_000)
        )
    assert caught.value.status_code == 413
    assert "WHISPER_API_MAX_UPLOAD_BYTES" in caught.value.message


def test_nginx_answers_openai_shaped_json_when_no_instance_answers(tmp_path: Path) -> None:
    from tests.support.server import free_port

    proxy = Nginx([f"127.0.0.1:{free_port()}"], tmp_path).start(ready_path=None)
    try:
        response = requests.get(proxy.base_url + "/v1/models", timeout=10)
        prefixed = requests.get(proxy.base_url + "/whisper/v1/models", timeout=10)
    finally:
        proxy.stop()
    for answer in (response, prefixed):
        assert answer.status_code == 502
        assert answer.headers["Content-Type"] == "application/json"
        assert set(answer.json()["error"]) == {"message", "type", "param", "code"}


def test_example_site_passes_nginx_configuration_check(tmp_path: Path) -> None:
    """deploy/nginx/whisper_api.conf as an admin installs it, with a throwaway certificate."""
    binary = require_tool("nginx", "/usr/sbin/nginx")
    openssl = require_tool("openssl")
    shutil.copytree(DEPLOY, tmp_path, dirs_exist_ok=True)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    site = (tmp_path / "whisper_api.conf").read_text()
    site = site.replace("/etc/ssl/certs/speech.example.com.pem", str(cert))
    site = site.replace("/etc/ssl/private/speech.example.com.key", str(key))
    site = site.replace("# include whisper_api-prefix.locations;", "include whisper_api-prefix.locations;")
    (tmp_path / "nginx.conf").write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n{site}\n}}\n")
    check = subprocess.run(
        [
            binary,
            "-t",
            "-c",
            str(tmp_path / "nginx.conf"),
            "-p",
            str(tmp_path),
            "-e",
            str(tmp_path / "error.log"),
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def _hold_slots(server: ServerProcess) -> list[socket.socket]:
    """Direct uploads that are admitted, then send no body: every slot of `server` is taken."""
    capacity = requests.get(server.base_url + "/ready", timeout=5).json()["requests"]["capacity"]
    holders = []
    for _ in range(capacity):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        sock.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: t\r\n"
            b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n--xyz\r\n"
        )
        holders.append(sock)
    time.sleep(1.0)
    return holders


@pytest.mark.parametrize("size", [5_000_000, 20_000_000])
def test_with_every_slot_taken_the_429_comes_through_nginx_not_a_502(
    nginx: Nginx, backends: list[ServerProcess], size: int
) -> None:
    holders = _hold_slots(backends[0])
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            _sdk(nginx.base_url + "/v1").audio.transcriptions.create(
                model="tiny.en", file=("big.wav", b"\0" * size)
            )
        assert caught.value.status_code == 429
        assert caught.value.code == "server_busy"
        assert int(caught.value.response.headers["retry-after"]) >= 1
    finally:
        for sock in holders:
            sock.close()


def test_nginx_limits_connections_per_client_with_a_json_429(nginx: Nginx) -> None:
    held = []
    try:
        for _ in range(40):  # uploads that keep sending nothing: nginx holds them, not the app
            sock = socket.create_connection(("127.0.0.1", nginx.port), timeout=30)
            sock.sendall(
                b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: t\r\n"
                b"Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n"
            )
            held.append(sock)
        time.sleep(0.5)
        answer = requests.get(nginx.base_url + "/v1/models", timeout=10)
        assert answer.status_code == 429
        assert answer.json()["error"]["code"] == "too_many_connections"
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert requests.get(nginx.base_url + "/v1/models", timeout=10).status_code == 200
