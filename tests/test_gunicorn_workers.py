"""gunicorn with two CPU workers under the openai-whisper engine: one model each, slots kept on respawn."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "WHISPER_ENGINE": "openai-whisper",
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_API_WORKERS": "2",
        "WHISPER_API_THREADS": "6",
        "WHISPER_API_MAX_QUEUE": "4",  # either worker may accept all four requests: none gets a 429
        "WHISPER_API_GPUS": "",
    }
    server = ServerProcess(env, tmp_path_factory.mktemp("two-workers") / "server.log").start(timeout=240)
    try:
        _wait_for(lambda: len(_loaded(server)) == 2, 240)
        yield server
    finally:
        server.stop()


def _loaded(server: ServerProcess) -> list[str]:
    """Worker pids that logged their model load, in order."""
    return re.findall(
        r"\[(\d+)\] \[INFO\] whisper_api\.engine\.registry: loaded openai-whisper", _log(server)
    )


def _slots(server: ServerProcess) -> dict[str, str]:
    """Worker pid -> the slot it was given."""
    return dict(re.findall(r"\[(\d+)\] \[INFO\] gunicorn\.error: worker slot (\d+) uses CPU", _log(server)))


def _log(server: ServerProcess) -> str:
    return server.log_path.read_text(errors="replace")


def _wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.5)


def _transcribe(base_url: str, jfk_bytes: bytes) -> str:
    response = requests.post(
        base_url + "/v1/audio/transcriptions",
        files={"file": ("jfk.flac", jfk_bytes)},
        data={"model": "whisper-1", "response_format": "text"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    return response.text


def test_each_worker_loads_its_own_model_before_serving(two_workers: ServerProcess) -> None:
    assert sorted(_slots(two_workers).values()) == ["0", "1"]
    assert set(_loaded(two_workers)) == set(_slots(two_workers))


def test_two_workers_serve_concurrent_requests(two_workers: ServerProcess, jfk_bytes: bytes) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(lambda _: _transcribe(two_workers.base_url, jfk_bytes), range(4)))
    assert all("ask not what your country can do for you" in t.lower() for t in texts)


def test_a_replaced_worker_takes_the_dead_workers_slot(two_workers: ServerProcess, jfk_bytes: bytes) -> None:
    slots = _slots(two_workers)
    victim = next(pid for pid, slot in slots.items() if slot == "1")
    os.kill(int(victim), signal.SIGKILL)
    _wait_for(lambda: len(_slots(two_workers)) == 3 and len(_loaded(two_workers)) == 3, 240)
    newcomer = next(pid for pid in _slots(two_workers) if pid not in slots)
    assert _slots(two_workers)[newcomer] == "1"
    assert "ask not" in _transcribe(two_workers.base_url, jfk_bytes).lower()
