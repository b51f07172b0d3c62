"""Slow and greedy clients against the real server reached directly: it stays responsive.

Half request heads, heads or bodies sent a byte at a time, more connections than the worker keeps,
and uploads arriving while every slot is taken. `/health` must answer within 2 s throughout; the
slow ones get a 408, the surplus a 503, the late upload its 429 before it has sent its body.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.rawhttp import read_response
from tests.support.server import ServerProcess

KEY = "sk-slow-clients-test-key-0123456789"
HEADER_TIMEOUT = 3
BODY_TIMEOUT = 6
MAX_CONNECTIONS = 24
TRANSCRIBE = "/v1/audio/transcriptions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("slow-clients") / "server.log"
    env = {
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_API_THREADS": "4",
        "WHISPER_API_KEYS": KEY,
        "WHISPER_API_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "WHISPER_API_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "WHISPER_API_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
    }
    process = ServerProcess(env, log).start()
    try:
        yield process
    finally:
        process.stop()


def connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=30)


def upload_head(length: int, key: str | None = KEY, path: str = TRANSCRIBE) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        "Content-Type: multipart/form-data; boundary=xyz",
        f"Content-Length: {length}",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_health_answers(server: ServerProcess) -> None:
    """`/health` and `/ready` answer within 2 s (the bound a load balancer's probe gives)."""
    for path in ("/health", "/ready"):
        answer = requests.get(server.base_url + path, timeout=2)
        assert answer.status_code == 200, answer.text


class Trickle:
    """Sockets that send `payload` one byte per `interval` in a background thread."""

    def __init__(self, sockets: list[socket.socket], payload: bytes, interval: float) -> None:
        self.sockets = sockets
        self.payload = payload
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for byte in self.payload:
            if self.stop.wait(self.interval):
                return
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.send(bytes([byte]))

    def __enter__(self) -> Trickle:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()
        for sock in self.sockets:
            sock.close()


def expect_error(sock: socket.socket, status: int, code: str | None, timeout: float = 60) -> None:
    answer = read_response(sock, timeout=timeout)
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code


# --- request heads ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "partial",
    [b"", b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: te", b"GET /health HTTP/1.1\r\n"],
    ids=["nothing", "half-a-head", "request-line-only"],
)
def test_health_answers_while_half_heads_hold_more_connections_than_threads(
    server: ServerProcess, partial: bytes
) -> None:
    sockets = [connect(server) for _ in range(12)]
    try:
        for sock in sockets:
            sock.sendall(partial)
        time.sleep(0.5)
        assert_health_answers(server)
    finally:
        for sock in sockets:
            sock.close()


def test_health_answers_while_heads_arrive_a_byte_at_a_time(server: ServerProcess) -> None:
    head = upload_head(1000)
    with Trickle([connect(server) for _ in range(12)], head, interval=0.5):
        for _ in range(3):
            time.sleep(0.7)
            assert_health_answers(server)


def test_a_head_not_finished_in_time_gets_a_408_and_is_closed(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: t\r\n")
        expect_error(sock, 408, "request_timeout")
        assert sock.recv(1) == b""


def test_a_head_trickled_under_the_limit_still_gets_its_408(server: ServerProcess) -> None:
    sock = connect(server)
    with Trickle([sock], upload_head(1000) * 10, interval=0.2):
        expect_error(sock, 408, "request_timeout")


# --- request bodies --------------------------------------------------------------------------------


def test_health_answers_while_slow_bodies_hold_every_request_thread(server: ServerProcess) -> None:
    sockets = [connect(server) for _ in range(8)]
    for sock in sockets:
        sock.sendall(upload_head(100_000) + b"--xyz\r\n")
    with Trickle(sockets, b"x" * 1000, interval=1.0):
        for _ in range(3):
            time.sleep(0.7)
            assert_health_answers(server)


def test_a_body_sent_a_byte_a_second_gets_a_408(server: ServerProcess) -> None:
    sock = connect(server)
    sock.sendall(upload_head(100_000) + b"--xyz\r\n")
    with Trickle([sock], b"x" * 1000, interval=1.0):
        expect_error(sock, 408, "request_timeout")


def test_without_a_key_the_401_comes_before_the_body(server: ServerProcess) -> None:
    for path in (TRANSCRIBE, "/v1/audio/translations", "/v1/chat/completions"):
        with connect(server) as sock:
            sock.sendall(upload_head(20_000_000, key=None, path=path) + b"x" * 1000)
            # answered before the slow-body limit could cut it; OpenAI's missing-key code is null
            expect_error(sock, 401, None, timeout=BODY_TIMEOUT - 1)


# --- connections past the limit and the early 429 ----------------------------------------------


@pytest.fixture(scope="module")
def crowded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with a small connection cap and a head timeout long enough that the held
    connections stay open however loaded the test machine is."""
    log = tmp_path_factory.mktemp("crowded") / "server.log"
    env = {
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_API_HEADER_TIMEOUT": "120",
        "WHISPER_API_MAX_CONNECTIONS": "8",
    }
    process = ServerProcess(env, log).start()
    try:
        yield process
    finally:
        process.stop()


def answered(sock: socket.socket) -> bool:
    """Whether the server has written to (or closed) `sock`, without waiting."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
        return True
    except BlockingIOError:
        return False
    finally:
        sock.settimeout(30)


def hold(server: ServerProcess, count: int, partial: bytes) -> list[socket.socket]:
    """`count` connections the server keeps open. The readiness check's connection still counts
    until the worker sees its client close it, which can come after the first connections here are
    accepted; one refused for that is replaced."""
    held: list[socket.socket] = []
    for _ in range(3):
        while len(held) < count:
            held.append(connect(server))
            held[-1].sendall(partial)
        time.sleep(0.5)
        refused = [sock for sock in held if answered(sock)]
        for sock in refused:
            sock.close()
        held = [sock for sock in held if sock not in refused]
        if len(held) == count:
            return held
    raise AssertionError(f"the server kept {len(held)} of {count} connections")


@pytest.mark.parametrize("partial", [b"", b"GET /v1/models HTTP/1.1\r\n"], ids=["silent", "half-a-head"])
def test_connections_past_the_limit_get_a_503_at_once(crowded: ServerProcess, partial: bytes) -> None:
    held = hold(crowded, 8, partial)
    try:
        for _ in range(3):
            with connect(crowded) as extra:
                # answered at once, not left to the head timeout
                expect_error(extra, 503, "too_many_connections", timeout=30)
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.5)
    assert_health_answers(crowded)


def test_with_every_slot_taken_an_upload_gets_its_429_before_sending_its_body(
    crowded: ServerProcess,
) -> None:
    ready = requests.get(crowded.base_url + "/ready", timeout=5).json()
    capacity = ready["requests"]["capacity"]
    holders = [connect(crowded) for _ in range(capacity)]
    for sock in holders:  # admitted, then reading a body that does not come
        sock.sendall(upload_head(1_000_000) + b"--xyz\r\n")
    try:
        time.sleep(1.0)
        for size in (20_000_000, 1_000_000, 5_000):
            with connect(crowded) as late:
                late.sendall(upload_head(size) + b"x" * 1000)
                # well before any holder is cut off as too slow (20 s of grace by default)
                answer = read_response(late, timeout=10)
                assert answer.status == 429, answer.body
                assert int(answer.headers["retry-after"]) >= 1
                assert answer.json()["error"]["code"] == "server_busy"
        assert_health_answers(crowded)
    finally:
        for sock in holders:
            sock.close()


def test_the_server_transcribes_after_the_slow_clients(server: ServerProcess, audio_dir: Path) -> None:
    time.sleep(1)
    with (audio_dir / "jfk.flac").open("rb") as audio:
        answer = requests.post(
            server.base_url + TRANSCRIBE,
            headers={"Authorization": f"Bearer {KEY}"},
            files={"file": ("jfk.flac", audio)},
            data={"model": "whisper-1"},
            timeout=120,
        )
    assert answer.status_code == 200, answer.text
    assert "ask not what your country" in answer.json()["text"].lower()
