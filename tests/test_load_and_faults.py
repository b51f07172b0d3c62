"""The real server under load and faults: 429 at once, deadlines, disconnects, kill -9, SIGTERM."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import requests

from tests.support.media import wav_bytes
from tests.support.rawhttp import RawResponse, multipart, read_response
from tests.support.server import ServerProcess, wait_until_admitted, worker_pids
from whisper_api.engine.audio import decode_audio

TRANSCRIBE = "/v1/audio/transcriptions"
SHORT_WAV = wav_bytes(np.zeros(8_000, dtype=np.float32))


@pytest.fixture(scope="module")
def long_wav(jfk_bytes: bytes) -> bytes:
    """JFK's sentence three times: 33 s of speech, a few seconds of work for tiny.en."""
    return wav_bytes(np.tile(decode_audio(jfk_bytes).samples, 3))


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> ServerProcess:
    root = tmp_path_factory.mktemp(name)
    return ServerProcess({"WHISPER_MODEL": "tiny.en", **env}, root / "server.log").start()


def _post(url: str, data: bytes, timeout: float = 300, **fields: str) -> requests.Response:
    return requests.post(
        url + TRANSCRIBE,
        files={"file": ("a.wav", data)},
        data={"model": "whisper-1", **fields},
        timeout=timeout,
    )


def _probe(url: str) -> requests.Response:
    """A request without a file: 429 when the worker is full, else a cheap 400 that holds no slot."""
    return requests.post(url + TRANSCRIBE, data={"model": "whisper-1"}, timeout=30)


class RawRequest:
    """A transcription sent whole over its own socket, admitted before this returns."""

    def __init__(self, url: str, wav: bytes) -> None:
        wait_until_admitted(url, 0, within=120)  # whatever an earlier test left has finished
        host, port = url.removeprefix("http://").split(":")
        body, content_type = multipart({"model": "whisper-1", "file": ("long.wav", wav)})
        self.sock = socket.create_connection((host, int(port)), timeout=300)
        head = f"POST {TRANSCRIBE} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
        self.sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        wait_until_admitted(url, 1, within=120)

    def response(self) -> RawResponse:
        try:
            return read_response(self.sock)
        finally:
            self.sock.close()


class Background(threading.Thread):
    """Run one call in a thread and keep its result or exception."""

    def __init__(self, call) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.result = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


# --- one running place, no queue -----------------------------------------------------------------


@pytest.fixture(scope="module")
def single_slot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _start(
        tmp_path_factory, "single", {"WHISPER_API_MAX_CONCURRENT": "1", "WHISPER_API_MAX_QUEUE": "0"}
    )
    try:
        yield server
    finally:
        server.stop()


def test_busy_worker_answers_429_server_busy_with_retry_after(single_slot: ServerProcess, long_wav) -> None:
    running = RawRequest(single_slot.base_url, long_wav)
    busy = _probe(single_slot.base_url)
    assert busy.status_code == 429
    assert busy.json()["error"]["code"] == "server_busy"
    assert int(busy.headers["Retry-After"]) >= 1
    assert running.response().status == 200


def test_health_and_ready_answer_while_every_slot_is_busy(single_slot: ServerProcess, long_wav) -> None:
    running = RawRequest(single_slot.base_url, long_wav)
    try:
        assert _probe(single_slot.base_url).status_code == 429
        assert requests.get(single_slot.base_url + "/health", timeout=5).status_code == 200
        assert requests.get(single_slot.base_url + "/ready", timeout=5).status_code == 200
    finally:
        running.sock.close()  # hang up: the next test finds the place free again


def test_client_that_disconnects_frees_its_slot(single_slot: ServerProcess, long_wav) -> None:
    abandoned = RawRequest(single_slot.base_url, long_wav)
    assert _probe(single_slot.base_url).status_code == 429
    abandoned.sock.close()
    deadline = time.monotonic() + 120
    while (status := _probe(single_slot.base_url).status_code) == 429:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status == 400  # the probe was admitted: the place is free again
    log = single_slot.log_path.read_text(errors="replace")
    stopped = [
        line for line in log.splitlines() if f'"path":"{TRANSCRIBE}"' in line and '"status":499' in line
    ]
    assert stopped, "the abandoned transcription was not stopped"


# --- audio-scaled deadlines -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tight_deadline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # 33 s of audio may take 3 ms: the deadline passes before the first 30 s window is decoded.
    env = {"WHISPER_API_TIMEOUT_BASE": "0", "WHISPER_API_TIMEOUT_PER_AUDIO_SECOND": "0.0001"}
    server = _start(tmp_path_factory, "deadline", env)
    try:
        yield server
    finally:
        server.stop()


def test_transcription_past_its_deadline_is_an_openai_error(tight_deadline: ServerProcess, long_wav) -> None:
    client = openai.OpenAI(base_url=tight_deadline.base_url + "/v1", api_key="x", max_retries=0)
    with client, pytest.raises(openai.APIStatusError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=("long.wav", long_wav))
    assert caught.value.status_code == 504
    assert caught.value.code == "timeout"
    assert caught.value.response.headers["x-should-retry"] == "false"


def test_streamed_transcription_past_its_deadline_is_an_openai_error(
    tight_deadline: ServerProcess, long_wav
) -> None:
    response = _post(tight_deadline.base_url, long_wav, stream="true")
    if response.status_code == 200:  # the deadline passed after the stream began: an error event
        assert '"code":"timeout"' in response.text.replace(" ", "")
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"


# --- worker faults ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"WHISPER_API_WORKERS": "2", "WHISPER_API_CPU_THREADS": "1", "WHISPER_API_GRACEFUL_TIMEOUT": "120"}
    server = _start(tmp_path_factory, "faults", env)
    try:
        yield server
    finally:
        server.stop()


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _busiest_worker(master: int, within: float = 3.0) -> int:
    workers = worker_pids(master)
    before = {pid: _cpu_ticks(pid) for pid in workers}
    time.sleep(within)
    return max(workers, key=lambda pid: _cpu_ticks(pid) - before[pid])


def _wait_for_workers(master: int, count: int, within: float = 120) -> list[int]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        pids = worker_pids(master)
        if len(pids) == count:
            return pids
        time.sleep(0.2)
    raise AssertionError(f"expected {count} workers, have {worker_pids(master)}")


def test_killed_worker_is_replaced_and_other_requests_complete(
    two_workers: ServerProcess, long_wav, jfk_bytes
) -> None:
    master = two_workers.process.pid
    doomed = Background(lambda: _post(two_workers.base_url, long_wav))
    doomed.start()
    victim = _busiest_worker(master)
    sdk = openai.OpenAI(base_url=two_workers.base_url + "/v1", api_key="x", max_retries=3, timeout=300)
    texts: list[str] = []

    def steady_traffic() -> None:
        for _ in range(4):
            texts.append(
                sdk.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes)).text
            )

    others = Background(steady_traffic)
    others.start()
    os.kill(victim, signal.SIGKILL)
    others.join(600)
    doomed.join(300)
    sdk.close()
    assert others.error is None, others.error
    assert len(texts) == 4 and all("fellow americans" in t.lower() for t in texts)
    assert doomed.error is not None or doomed.result.status_code == 200  # dropped, never a wrong answer
    workers = _wait_for_workers(master, 2)
    assert victim not in workers
    deadline = time.monotonic() + 120
    while requests.get(two_workers.base_url + "/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.5)


def test_sigterm_finishes_requests_in_flight_then_exits_zero(two_workers: ServerProcess, long_wav) -> None:
    _wait_for_workers(two_workers.process.pid, 2)
    in_flight = Background(lambda: _post(two_workers.base_url, long_wav))
    in_flight.start()
    _busiest_worker(two_workers.process.pid, within=2.0)  # it is being transcribed
    two_workers.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    with pytest.raises(requests.ConnectionError):
        requests.get(two_workers.base_url + "/health", timeout=5)
    in_flight.join(300)
    assert in_flight.error is None, in_flight.error
    assert in_flight.result.status_code == 200
    assert "fellow americans" in in_flight.result.json()["text"].lower()
    assert two_workers.process.wait(timeout=120) == 0


# --- chat takes the same road as an upload -------------------------------------------------------------


def _chat_body(wav: bytes, *, stream: bool = False) -> dict:
    part = {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": "wav"}}
    return {
        "model": "gpt-4o-audio-preview",
        "stream": stream,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Transcribe:"}, part]}],
    }


def _chat(url: str, wav: bytes, *, stream: bool = False, request_id: str = "") -> requests.Response:
    headers = {"X-Request-Id": request_id} if request_id else {}
    return requests.post(
        url + "/v1/chat/completions", json=_chat_body(wav, stream=stream), headers=headers, timeout=300
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_busy_worker_refuses_a_chat_with_audio_with_429_and_retry_after(
    single_slot: ServerProcess, long_wav, stream: bool
) -> None:
    running = RawRequest(single_slot.base_url, long_wav)
    busy = _chat(single_slot.base_url, SHORT_WAV, stream=stream)
    assert busy.status_code == 429
    assert busy.json()["error"]["code"] == "server_busy"
    assert int(busy.headers["Retry-After"]) >= 1
    assert running.response().status == 200


def test_chat_transcription_shows_in_metrics_and_the_request_log(
    single_slot: ServerProcess, long_wav
) -> None:
    def audio_seconds() -> float:
        text = requests.get(single_slot.base_url + "/metrics", timeout=10).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("whisper_api_audio_seconds_total{")
        )

    before = audio_seconds()
    response = _chat(single_slot.base_url, long_wav, request_id="it-chat-metrics-1")
    assert response.status_code == 200
    assert "ask not what your country" in response.json()["choices"][0]["message"]["content"].lower()
    assert audio_seconds() - before == pytest.approx(33.0, abs=0.1)
    time.sleep(0.3)
    lines = [
        json.loads(line)
        for line in single_slot.log_path.read_text().splitlines()
        if '"request_id":"it-chat-metrics-1"' in line
    ]
    assert len(lines) == 1
    assert lines[0]["endpoint"] == "/v1/chat/completions"
    assert lines[0]["model"] == "tiny.en"
    assert lines[0]["audio_seconds"] == pytest.approx(33.0, abs=0.1)


def test_chat_past_its_deadline_is_an_openai_504(tight_deadline: ServerProcess, long_wav) -> None:
    client = openai.OpenAI(base_url=tight_deadline.base_url + "/v1", api_key="x", max_retries=0)
    with client, pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(**_chat_body(long_wav))
    assert caught.value.status_code == 504
    assert caught.value.code == "timeout"


def test_streamed_chat_past_its_deadline_is_an_openai_error(tight_deadline: ServerProcess, long_wav) -> None:
    response = _chat(tight_deadline.base_url, long_wav, stream=True)
    if response.status_code == 200:  # the deadline passed after the stream began: an error event
        assert '"code":"timeout"' in response.text.replace(" ", "")
        assert response.text.rstrip().endswith("data: [DONE]")
    else:
        assert response.status_code == 504
        assert response.json()["error"]["code"] == "timeout"
