"""The minimum upload rate and the head reader, on real socket pairs (no server)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from whisper_api.errors import RequestTimeoutError
from whisper_api.pacing import PacedSocket
from whisper_api.worker import HeadReader


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    client, server = socket.socketpair()
    with client, server:
        yield client, server


def test_a_client_sending_nothing_fails_after_the_grace(pair) -> None:
    client, server = pair
    paced = PacedSocket(server, grace=0.3, min_rate=1000)
    with pytest.raises(RequestTimeoutError):
        paced.recv(100)
    with pytest.raises(RequestTimeoutError):  # and stays failed
        paced.recv(100)


def test_bytes_already_waiting_are_taken_after_the_allowance(pair) -> None:
    client, server = pair
    paced = PacedSocket(server, grace=0.05, min_rate=1000)
    client.sendall(b"x" * 500)
    time.sleep(0.2)  # the app started reading late; the client was not slow
    assert paced.recv(1000) == b"x" * 500
    with pytest.raises(RequestTimeoutError):
        paced.recv(1000)


def test_a_steady_sender_above_the_rate_is_never_cut(pair) -> None:
    client, server = pair
    paced = PacedSocket(server, grace=0.2, min_rate=1000)

    def send() -> None:
        for _ in range(20):
            client.sendall(b"y" * 200)  # 200 B every 20 ms: 10 kB/s
            time.sleep(0.02)
        client.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    received = b""
    while chunk := paced.recv(4096):
        received += chunk
    sender.join()
    assert len(received) == 4000


def test_a_trickle_below_the_rate_is_cut(pair) -> None:
    client, server = pair
    paced = PacedSocket(server, grace=0.2, min_rate=1000)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.05):
            client.send(b"z")  # 20 B/s

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        with pytest.raises(RequestTimeoutError):
            while paced.recv(4096):
                pass
    finally:
        stop.set()
        sender.join()


def test_the_callers_own_timeout_is_a_plain_timeout(pair) -> None:
    client, server = pair
    paced = PacedSocket(server, grace=30, min_rate=1000)
    paced.settimeout(0.1)  # as gunicorn's keep-alive drain does
    with pytest.raises(TimeoutError):
        paced.recv(10)
    paced.settimeout(None)
    client.sendall(b"ok")
    assert paced.recv(10) == b"ok"
    assert server.gettimeout() is None  # writes to the socket never inherit a read deadline


@pytest.mark.parametrize(
    ("head", "complete", "probe"),
    [
        (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
        (b"GET /ready?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", True, True),
        (b"HEAD /metrics HTTP/1.1\r\n\r\n", True, True),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n", False, True),
        (b"GET /health HTTP/1.1\r\nContent-Length: 100000\r\n\r\n", True, False),
        (b"GET /health HTTP/1.1\r\nContent-Length: 0\r\n\r\n", True, True),
        (b"GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", True, False),
        (b"POST /health HTTP/1.1\r\n\r\n", True, False),
        (b"GET /v1/models HTTP/1.1\r\n\r\n", True, False),
        (b"GET /healthz HTTP/1.1\r\n\r\n", True, False),
    ],
)
def test_head_reader_knows_complete_heads_and_probes(head: bytes, complete: bool, probe: bool) -> None:
    reader = HeadReader(deadline=0)
    reader.data += head
    assert reader.complete is complete
    assert reader.is_probe() is probe
