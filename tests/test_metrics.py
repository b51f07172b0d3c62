"""`/metrics` in the web layer: counters move with requests (single process, fake transcriber)."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.longaudio import jfk_wav


def scrape(client: FlaskClient) -> dict[tuple[str, frozenset], float]:
    response = client.get("/metrics")
    response.close()
    text = response.get_data(as_text=True)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_are_served_in_prometheus_text_format(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert "whisper_api_queue_depth" in response.get_data(as_text=True)


def test_a_transcription_moves_requests_audio_seconds_and_realtime_factor(
    client: FlaskClient, jfk_bytes: bytes
) -> None:
    before = scrape(client)
    client.post(
        "/v1/audio/transcriptions",
        data={"model": "whisper-1", "file": (io.BytesIO(jfk_wav(jfk_bytes)), "jfk.wav")},
    ).close()
    after = scrape(client)
    endpoint = {"endpoint": "/v1/audio/transcriptions", "method": "POST", "status": "200"}
    assert (
        value(after, "whisper_api_requests_total", **endpoint)
        - value(before, "whisper_api_requests_total", **endpoint)
        == 1
    )
    audio = {"model": "base", "task": "transcribe"}
    assert value(after, "whisper_api_audio_seconds_total", **audio) - value(
        before, "whisper_api_audio_seconds_total", **audio
    ) == pytest.approx(11.0, abs=0.05)
    assert (
        value(after, "whisper_api_realtime_factor_count", **audio)
        - value(before, "whisper_api_realtime_factor_count", **audio)
        == 1
    )


def test_unknown_urls_are_counted_under_one_label(client: FlaskClient) -> None:
    before = scrape(client)
    client.get("/no/such/page").close()
    after = scrape(client)
    labels = {"endpoint": "unmatched", "method": "GET", "status": "404"}
    assert (
        value(after, "whisper_api_requests_total", **labels)
        - value(before, "whisper_api_requests_total", **labels)
        == 1
    )


def test_queue_helpers_move_depth_and_rejections(client: FlaskClient) -> None:
    from whisper_api.web import metrics

    before = scrape(client)
    with metrics.waiting_in_queue():
        during = scrape(client)
    metrics.reject("queue_full")
    after = scrape(client)
    assert value(during, "whisper_api_queue_depth") - value(before, "whisper_api_queue_depth") == 1
    assert value(after, "whisper_api_queue_depth") == value(before, "whisper_api_queue_depth")
    assert (
        value(after, "whisper_api_rejections_total", reason="queue_full")
        - value(before, "whisper_api_rejections_total", reason="queue_full")
        == 1
    )


def test_busy_slots_follow_running_transcriptions(client: FlaskClient) -> None:
    from whisper_api.web.admission import Admission

    admission = Admission(max_running=2, max_waiting=1, wait_timeout=30)
    before = value(scrape(client), "whisper_api_slots_busy")
    slot = admission.enter()
    queued = value(scrape(client), "whisper_api_slots_busy")
    slot.wait_turn()
    running = value(scrape(client), "whisper_api_slots_busy")
    slot.release()
    slot.release()  # idempotent: counted once
    after = value(scrape(client), "whisper_api_slots_busy")
    assert (queued - before, running - before, after - before) == (0, 1, 0)
    assert value(scrape(client), "whisper_api_slots") >= 1
