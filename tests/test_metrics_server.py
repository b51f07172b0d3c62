"""`/metrics` and the request log of the real server with two gunicorn workers (multiprocess mode)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import ServerProcess

JFK_SECONDS = 11.0


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("two-workers") / "server.log"
    server = ServerProcess({"WHISPER_MODEL": "tiny.en", "WHISPER_API_WORKERS": "2"}, log).start()
    try:
        yield server
    finally:
        server.stop()


def scrape(server: ServerProcess) -> dict[tuple[str, frozenset], float]:
    text = requests.get(server.base_url + "/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum of `name` over samples whose labels include `labels` (any pid label from live gauges)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def workers(server: ServerProcess) -> list[int]:
    assert server.process is not None
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text()
    return [int(pid) for pid in children.split()]


def wait_ready(server: ServerProcess, loaded: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = scrape(server)
        if total(samples, "whisper_api_models_loaded", model="tiny.en") == loaded:
            return samples
        time.sleep(0.3)
    raise AssertionError(f"models_loaded never reached {loaded}: {server.log()}")


def test_metrics_sum_both_workers_and_move_with_transcriptions(
    two_workers: ServerProcess, audio_dir: Path
) -> None:
    before = wait_ready(two_workers, loaded=2)
    client = openai.OpenAI(base_url=two_workers.base_url + "/v1", api_key="sk-local", max_retries=0)
    for _ in range(3):
        with (audio_dir / "jfk.flac").open("rb") as audio:
            client.audio.transcriptions.create(model="tiny.en", file=audio)
    time.sleep(0.3)
    scrapes = [scrape(two_workers) for _ in range(4)]  # answered by either worker: all must agree
    ok = {"endpoint": "/v1/audio/transcriptions", "method": "POST", "status": "200"}
    audio_labels = {"model": "tiny.en", "task": "transcribe"}
    for after in scrapes:
        assert (
            total(after, "whisper_api_requests_total", **ok)
            - total(before, "whisper_api_requests_total", **ok)
            == 3
        )
        gained = total(after, "whisper_api_audio_seconds_total", **audio_labels) - total(
            before, "whisper_api_audio_seconds_total", **audio_labels
        )
        assert gained == pytest.approx(3 * JFK_SECONDS, abs=0.1)
        assert (
            total(after, "whisper_api_realtime_factor_count", **audio_labels)
            - total(before, "whisper_api_realtime_factor_count", **audio_labels)
            == 3
        )
        assert (
            total(after, "whisper_api_request_duration_seconds_count", endpoint="/v1/audio/transcriptions")
            >= 3
        )
        assert total(after, "whisper_api_model_load_seconds_count", model="tiny.en") == 2
        assert total(after, "whisper_api_models_loaded", model="tiny.en") == 2
        assert total(after, "whisper_api_queue_depth") == 0


def test_a_replaced_worker_is_not_counted_twice(two_workers: ServerProcess) -> None:
    wait_ready(two_workers, loaded=2)
    os.kill(workers(two_workers)[0], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # gunicorn starts a new worker, which loads the model again
        samples = scrape(two_workers)
        if total(samples, "whisper_api_model_load_seconds_count", model="tiny.en") == 3:
            break
        time.sleep(0.3)
    else:
        raise AssertionError("no replacement worker loaded the model")
    assert total(samples, "whisper_api_models_loaded", model="tiny.en") == 2


def test_server_logs_one_json_line_per_request_without_content(
    two_workers: ServerProcess, audio_dir: Path
) -> None:
    with (audio_dir / "jfk.flac").open("rb") as audio:
        response = requests.post(
            two_workers.base_url + "/v1/audio/transcriptions",
            data={"model": "tiny.en", "response_format": "text"},
            files={"file": ("jfk.flac", audio)},
            headers={"Authorization": "Bearer sk-not-for-logs", "X-Request-Id": "it-test-0001"},
            timeout=120,
        )
    assert "ask not what your country" in response.text
    time.sleep(0.3)
    log = two_workers.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if '"request_id":"it-test-0001"' in line]
    assert len(lines) == 1
    assert lines[0]["endpoint"] == "/v1/audio/transcriptions"
    assert lines[0]["status"] == 200
    assert lines[0]["model"] == "tiny.en"
    assert lines[0]["audio_seconds"] == pytest.approx(JFK_SECONDS, abs=0.05)
    assert lines[0]["client"] == "127.0.0.1"
    assert "ask not" not in log
    assert "sk-not-for-logs" not in log


def test_a_streamed_transcription_is_logged_once_after_its_last_event(
    two_workers: ServerProcess, audio_dir: Path
) -> None:
    started = time.monotonic()
    with (audio_dir / "jfk.flac").open("rb") as audio:
        response = requests.post(
            two_workers.base_url + "/v1/audio/transcriptions",
            data={"model": "tiny.en", "stream": "true"},
            files={"file": ("jfk.flac", audio)},
            headers={"X-Request-Id": "it-stream-0001"},
            timeout=120,
        )
    elapsed_ms = (time.monotonic() - started) * 1000
    assert response.text.endswith("data: [DONE]\n\n")
    time.sleep(0.3)
    log = two_workers.log_path.read_text()
    (line,) = [json.loads(raw) for raw in log.splitlines() if '"request_id":"it-stream-0001"' in raw]
    assert line["status"] == 200
    assert line["audio_seconds"] == pytest.approx(JFK_SECONDS, abs=0.05)
    # The whole stream was decoded inside the logged time (the upload and the network come on top).
    assert 0.3 * elapsed_ms < line["processing_ms"] <= elapsed_ms
