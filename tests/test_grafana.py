"""The Grafana dashboard asks only for metrics a real server exports: every name in its queries is
scraped from a running server's /metrics after a transcription and a busy refusal (429)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import ROOT, ServerProcess, wait_until_admitted

DASHBOARD = ROOT / "deploy" / "grafana" / "whisper_api.json"


def _queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    variables = [var["definition"] for var in dashboard["templating"]["list"] if var["type"] == "query"]
    return exprs + variables


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One slot and no queue, so a second request is refused at once."""
    env = {"WHISPER_MODEL": "tiny.en", "WHISPER_API_MAX_CONCURRENT": "1", "WHISPER_API_MAX_QUEUE": "0"}
    process = ServerProcess(env, tmp_path_factory.mktemp("grafana") / "server.log").start()
    try:
        yield process
    finally:
        process.stop()


def _scraped_after_traffic(server: ServerProcess, audio_dir: Path) -> set[str]:
    client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
    with (audio_dir / "jfk.flac").open("rb") as audio:
        client.audio.transcriptions.create(model="tiny.en", file=audio)
    # An upload that never finishes holds the only place; the next request gets a 429.
    with socket.create_connection(("127.0.0.1", server.port)) as holder:
        holder.sendall(
            b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n--b\r\n"
        )
        # It takes the only place once a worker thread has read its head; a request sent before
        # that is let in (CI once saw a 400 for the empty upload instead of the 429).
        wait_until_admitted(server.base_url, 1, within=30)
        url = server.base_url + "/v1/audio/transcriptions"
        refused = requests.post(url, files={"file": b"x"}, timeout=30)
        assert refused.status_code == 429, refused.text
    text = requests.get(server.base_url + "/metrics", timeout=30).text
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def test_dashboard_queries_name_only_exported_metrics(server: ServerProcess, audio_dir: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    named = set().union(*(re.findall(r"whisper_api_[a-z_]+", query) for query in _queries(dashboard)))
    exported = _scraped_after_traffic(server, audio_dir)
    assert not named - exported, sorted(named - exported)
    # requests, 429s, queue depth, real-time factor, audio seconds, models loaded, busy slots
    assert {
        "whisper_api_requests_total",
        "whisper_api_rejections_total",
        "whisper_api_queue_depth",
        "whisper_api_realtime_factor_bucket",
        "whisper_api_audio_seconds_total",
        "whisper_api_models_loaded",
        "whisper_api_slots_busy",
    } <= named


def test_dashboard_panels_have_unique_ids_and_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
    assert {var["name"] for var in dashboard["templating"]["list"]} == {"datasource", "instance"}
