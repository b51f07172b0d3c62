"""A client that leaves a transcription stream early stops the decoding and frees the worker."""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
import requests

from tests.support.media import speech_samples, wav_bytes
from tests.support.server import ServerProcess

REPEATS = 4  # 4 x 60 s: long enough that decoding it all takes many windows
STOPPED = r"client closed the transcription stream after (\d+) segments \(([\d.]+) of ([\d.]+) s\)"


@pytest.fixture(scope="module")
def long_wav(audio_dir: Path) -> bytes:
    """The 60 s multilingual clip four times over, as 16 kHz 16-bit mono WAV (about 7.7 MB)."""
    return wav_bytes(np.tile(speech_samples((audio_dir / "multilingual.mp3").read_bytes()), REPEATS))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Its own tiny.en server: the test reads the server's log and its worker's CPU time."""
    log = tmp_path_factory.mktemp("disconnect") / "server.log"
    process = ServerProcess({"WHISPER_MODEL": "tiny.en", "WHISPER_API_LOG_LEVEL": "info"}, log).start()
    try:
        yield process
    finally:
        process.stop()


def _worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _assert_worker_idle(server: ServerProcess, seconds: float = 3.0) -> None:
    """The worker burns (almost) no CPU: a decoder still running would use a core or more."""
    worker = _worker_pid(server.process.pid)
    time.sleep(0.5)
    before = _cpu_seconds(worker)
    time.sleep(seconds)
    used = _cpu_seconds(worker) - before
    assert used < 0.5, f"worker used {used:.2f} CPU s in {seconds} s after the disconnect:\n{server.log()}"


def _wait_for_log(server: ServerProcess, pattern: str, timeout: float = 120.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(pattern, server.log_path.read_text(errors="replace"))
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"server never logged {pattern!r}:\n{server.log()}")


def test_client_disconnect_mid_stream_stops_decoding_and_frees_the_worker(
    server: ServerProcess, long_wav: bytes, jfk_bytes: bytes
) -> None:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-local", max_retries=0, timeout=300)
    stream = client.audio.transcriptions.create(model="whisper-1", file=("long.wav", long_wav), stream=True)
    first = next(iter(stream))
    assert first.type == "transcript.text.delta"
    stream.close()  # the client goes away after the first delta

    stopped = _wait_for_log(server, STOPPED)
    decoded_until, duration = float(stopped.group(2)), float(stopped.group(3))
    assert duration == pytest.approx(60 * REPEATS, abs=1.0)
    assert decoded_until < duration / 2  # it stopped early instead of decoding the rest

    _assert_worker_idle(server)  # no decoding left running in the background

    # The worker serves the next request (it would queue behind an abandoned decode otherwise).
    text = client.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes)).text
    assert "ask not what your country" in text.lower().replace(",", "")


def test_health_answers_while_a_stream_is_decoding(server: ServerProcess, long_wav: bytes) -> None:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-local", max_retries=0, timeout=300)
    with client.audio.transcriptions.create(
        model="whisper-1", file=("long.wav", long_wav), stream=True
    ) as stream:
        assert next(iter(stream)).type == "transcript.text.delta"
        health = requests.get(server.base_url + "/health", timeout=10)  # same worker, another thread
        assert health.status_code == 200
        assert next(iter(stream)).type == "transcript.text.delta"  # and the stream goes on


def test_client_disconnect_mid_chat_stream_stops_decoding(server: ServerProcess, long_wav: bytes) -> None:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-local", max_retries=0, timeout=300)
    audio = {"data": base64.b64encode(long_wav).decode(), "format": "wav"}
    stream = client.chat.completions.create(
        model="whisper-1",
        messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": audio}]}],
        stream=True,
    )
    chunks = iter(stream)
    assert next(chunks).choices[0].delta.role == "assistant"
    assert next(chunks).choices[0].delta.content  # the first decoded segment
    stream.close()

    _wait_for_log(server, r"client closed the chat transcription stream; its work stopped")
    _assert_worker_idle(server)  # the rest of the audio is not decoded
