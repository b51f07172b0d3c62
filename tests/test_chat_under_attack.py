"""Chat completions with audio, sent as an attacker would: the same limits as an upload hold.

More concurrent chats than the worker admits, a client that hangs up on a long non-streamed chat,
many hour-long `input_audio` parts in one small request, and SIGTERM while an orphaned chat runs.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import psutil
import pytest
import requests

from bench.server import RssSampler
from tests.support.media import silent_flac, speech_samples, wav_bytes
from tests.support.rawhttp import read_response
from tests.support.server import ServerProcess, admitted, rss_bytes, wait_until_admitted, worker_pids

MAX_AUDIO_SECONDS = 1800


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, **env: str) -> ServerProcess:
    log = tmp_path_factory.mktemp(name) / "server.log"
    base = {"WHISPER_MODEL": "tiny.en", "WHISPER_API_THREADS": "8"}
    return ServerProcess({**base, **env}, log).start()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = _start(tmp_path_factory, "chat-attack", WHISPER_API_MAX_AUDIO_SECONDS=str(MAX_AUDIO_SECONDS))
    try:
        yield process
    finally:
        process.stop()


def _audio_part(data: bytes, fmt: str = "wav") -> dict:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def _chat_body(*parts: dict, stream: bool = False) -> bytes:
    message = {"role": "user", "content": [{"type": "text", "text": "transcribe"}, *parts]}
    return json.dumps({"model": "gpt-4o-audio-preview", "messages": [message], "stream": stream}).encode()


def _post_chat(server: ServerProcess, body: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=120)
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


def test_more_concurrent_chats_than_capacity_get_429s(server: ServerProcess, jfk_wav: bytes) -> None:
    capacity = requests.get(server.base_url + "/ready", timeout=5).json()["requests"]["capacity"]
    clients = capacity + 2
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-x", max_retries=0, timeout=300)
    start = threading.Barrier(clients)
    outcomes: list[str] = []
    peak = [0]

    def chat() -> None:
        start.wait()
        try:
            reply = client.chat.completions.create(
                model="gpt-4o-audio-preview",
                messages=[{"role": "user", "content": [_audio_part(jfk_wav)]}],  # type: ignore[list-item]
            )
            outcomes.append("ok" if reply.choices[0].message.content else "empty")
        except openai.RateLimitError as exc:
            assert exc.response.headers.get("retry-after")
            outcomes.append("429")

    def watch() -> None:
        while len(outcomes) < clients:
            peak[0] = max(peak[0], admitted(server.base_url))
            time.sleep(0.1)

    threads = [threading.Thread(target=chat) for _ in range(clients)]
    watcher = threading.Thread(target=watch)
    for thread in [*threads, watcher]:
        thread.start()
    for thread in [*threads, watcher]:
        thread.join()
    assert outcomes.count("429") >= clients - capacity, outcomes
    assert "ok" in outcomes and "empty" not in outcomes, outcomes
    assert peak[0] <= capacity
    wait_until_admitted(server.base_url, 0, explain=server.log)


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_whose_client_hangs_up_is_abandoned(
    server: ServerProcess, audio_dir: Path, stream: bool
) -> None:
    ten_minutes = wav_bytes(np.tile(speech_samples((audio_dir / "multilingual.mp3").read_bytes()), 10))
    sock = _post_chat(server, _chat_body(_audio_part(ten_minutes), stream=stream))
    wait_until_admitted(server.base_url, 1, explain=server.log)
    time.sleep(2)
    sock.close()
    # Ten minutes of speech take tiny.en far longer than this on the test machine's cores.
    wait_until_admitted(server.base_url, 0, within=30, explain=server.log)
    assert requests.get(server.base_url + "/health", timeout=2).status_code == 200


@pytest.mark.parametrize(("parts", "minutes"), [(10, 10), (4, 10), (40, 1)])
def test_many_audio_parts_share_one_audio_budget(server: ServerProcess, parts: int, minutes: int) -> None:
    silence = silent_flac(minutes * 60)
    body = _chat_body(*[_audio_part(silence) for _ in range(parts)])
    assert len(body) < 2_000_000  # a small request that unpacks into hours
    worker = worker_pids(server.process.pid)[0]
    before = rss_bytes(worker)
    with RssSampler([psutil.Process(worker)], interval=0.05) as sampler, _post_chat(server, body) as sock:
        answer = read_response(sock)
    growth = max(before, sampler.peaks[worker]) - before
    assert answer.status == 400, answer.body[:300]
    error = answer.json()["error"]
    assert error["code"] == "audio_too_long"
    assert error["param"].startswith("messages[0].content[")
    # The budget (30 min) decoded at most: 16 kHz float32 is 115 MB, plus the decoder's working room.
    assert growth < 600 * 2**20, f"worker grew by {growth / 2**20:.0f} MiB"


def test_sigterm_does_not_wait_for_a_chat_whose_client_left(
    tmp_path_factory: pytest.TempPathFactory, audio_dir: Path
) -> None:
    process = _start(tmp_path_factory, "chat-orphan", WHISPER_API_GRACEFUL_TIMEOUT="120")
    try:
        ten_minutes = wav_bytes(np.tile(speech_samples((audio_dir / "multilingual.mp3").read_bytes()), 10))
        sock = _post_chat(process, _chat_body(_audio_part(ten_minutes)))
        wait_until_admitted(process.base_url, 1, explain=process.log)
        time.sleep(2)
        sock.close()
        assert process.process is not None
        os.killpg(process.process.pid, signal.SIGTERM)
        try:
            code = process.process.wait(timeout=45)  # well inside the 120 s graceful timeout
        except subprocess.TimeoutExpired:
            pytest.fail(f"SIGTERM waited on the abandoned chat:\n{process.log()}")
        assert code == 0
    finally:
        process.stop()
