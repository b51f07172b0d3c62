"""Per-worker admission: running places, a bounded queue, 429 past that (unit and web layer)."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from flask.testing import FlaskClient

from tests.support.fakes import fake_loader
from tests.support.media import wav_bytes
from whisper_api.config import Settings
from whisper_api.errors import ClientDisconnectedError, DeadlineExceededError, ServerBusyError
from whisper_api.web import create_app
from whisper_api.web.admission import Admission
from whisper_api.web.state import get_state

SHORT_WAV = wav_bytes(np.full(16_000, 0.1, dtype=np.float32))  # small: the test client keeps it in memory


def test_request_past_running_and_queue_places_is_busy_at_once() -> None:
    admission = Admission(max_running=1, max_waiting=1, wait_timeout=30)
    first, second = admission.enter(), admission.enter()
    started = time.monotonic()
    with pytest.raises(ServerBusyError) as caught:
        admission.enter()
    assert time.monotonic() - started < 1
    assert int(caught.value.headers["Retry-After"]) >= 1
    first.release()
    second.release()


def test_queued_request_runs_when_the_running_one_releases() -> None:
    admission = Admission(max_running=1, max_waiting=1, wait_timeout=30)
    running = admission.enter()
    running.wait_turn()
    queued = admission.enter()
    turned = threading.Event()
    waiter = threading.Thread(target=lambda: (queued.wait_turn(), turned.set()))
    waiter.start()
    assert not turned.wait(0.5)
    running.release()
    assert turned.wait(5)
    waiter.join()
    queued.release()
    assert admission.admitted == 0


def test_queued_request_past_its_wait_timeout_is_busy() -> None:
    admission = Admission(max_running=1, max_waiting=1, wait_timeout=0.3)
    running = admission.enter()
    running.wait_turn()
    queued = admission.enter()
    with pytest.raises(ServerBusyError):
        queued.wait_turn()
    queued.release()
    running.release()
    assert admission.admitted == 0


def test_client_gone_while_queued_frees_its_place() -> None:
    admission = Admission(max_running=1, max_waiting=1, wait_timeout=30)
    running = admission.enter()
    running.wait_turn()
    queued = admission.enter(lambda: True)
    with pytest.raises(ClientDisconnectedError):
        queued.wait_turn()
    queued.release()
    assert admission.admitted == 1
    running.release()


def test_guard_stops_iteration_once_the_client_is_gone() -> None:
    gone = threading.Event()
    slot = Admission(1, 0, 30).enter(gone.is_set)
    slot.wait_turn()
    consumed = []
    with pytest.raises(ClientDisconnectedError):
        for item in slot.guard(iter(range(10))):
            consumed.append(item)
            if item == 2:
                gone.set()
    assert consumed == [0, 1, 2]
    slot.release()


def test_guard_stops_iteration_past_the_deadline() -> None:
    slot = Admission(1, 0, 30).enter()
    slot.wait_turn()
    slot.set_deadline(-1)
    with pytest.raises(DeadlineExceededError):
        next(slot.guard(iter(range(10))))
    slot.release()


def test_release_twice_frees_one_place() -> None:
    admission = Admission(max_running=1, max_waiting=1, wait_timeout=30)
    slot = admission.enter()
    admission.enter()
    slot.release()
    slot.release()
    assert admission.admitted == 1


def test_queue_setting_leaves_a_thread_for_health_checks() -> None:
    settings = Settings(threads=4, max_concurrent=2, max_queue=10)
    assert settings.effective_max_queue == 1


# --- the web layer --------------------------------------------------------------------------------


@pytest.fixture
def busy_client(fakes) -> FlaskClient:
    app = create_app(Settings(model="base", max_concurrent=1, max_queue=0), loader=fake_loader(fakes))
    return app.test_client()


def test_full_worker_answers_429_server_busy_with_retry_after(busy_client: FlaskClient) -> None:
    with busy_client.application.app_context():
        held = get_state().admission.enter()
    response = busy_client.post(
        "/v1/audio/transcriptions", data={"model": "whisper-1", "file": (_io(SHORT_WAV), "a.wav")}
    )
    held.release()
    assert response.status_code == 429
    assert response.json["error"]["code"] == "server_busy"
    assert int(response.headers["Retry-After"]) >= 1


def test_health_answers_while_the_worker_is_full(busy_client: FlaskClient) -> None:
    with busy_client.application.app_context():
        held = get_state().admission.enter()
    try:
        assert busy_client.get("/health").status_code == 200
    finally:
        held.release()


def test_finished_stream_gives_its_place_back(busy_client: FlaskClient) -> None:
    for _ in range(2):
        response = busy_client.post(
            "/v1/audio/transcriptions",
            data={"model": "whisper-1", "stream": "true", "file": (_io(SHORT_WAV), "a.wav")},
        )
        assert response.status_code == 200
        assert b"transcript.text.done" in response.data
        response.close()


def test_failed_request_gives_its_place_back(busy_client: FlaskClient) -> None:
    for _ in range(2):
        response = busy_client.post(
            "/v1/audio/transcriptions", data={"model": "whisper-1", "file": (_io(b"not audio"), "a.wav")}
        )
        assert response.status_code == 400


def _io(data: bytes) -> io.BytesIO:
    return io.BytesIO(data)


def test_a_429_is_counted_as_a_queue_full_rejection(busy_client: FlaskClient) -> None:
    from tests.test_metrics import scrape, value

    before = value(scrape(busy_client), "whisper_api_rejections_total", reason="queue_full")
    with busy_client.application.app_context():
        held = get_state().admission.enter()
    try:
        response = busy_client.post(
            "/v1/audio/transcriptions", data={"model": "whisper-1", "file": (_io(SHORT_WAV), "a.wav")}
        )
    finally:
        held.release()
    assert response.status_code == 429
    after = value(scrape(busy_client), "whisper_api_rejections_total", reason="queue_full")
    assert after - before == 1


def test_a_request_waiting_for_its_turn_shows_in_the_queue_depth(busy_client: FlaskClient) -> None:
    import threading

    from tests.test_metrics import scrape, value

    admission_state = busy_client.application.extensions["whisper_api"].admission
    admission = type(admission_state)(max_running=1, max_waiting=1, wait_timeout=5)
    first = admission.enter()
    first.wait_turn()
    second = admission.enter()
    waiter = threading.Thread(target=second.wait_turn)
    waiter.start()
    try:
        deadline = 50
        while value(scrape(busy_client), "whisper_api_queue_depth") < 1 and deadline:
            threading.Event().wait(0.05)
            deadline -= 1
        assert value(scrape(busy_client), "whisper_api_queue_depth") >= 1
    finally:
        first.release()
        waiter.join()
        second.release()
    assert value(scrape(busy_client), "whisper_api_queue_depth") == 0
