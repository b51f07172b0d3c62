"""Soak: concurrent clients, mixed valid and invalid requests, a worker killed half-way.

Bounded in time: WHISPER_API_SOAK_SECONDS (default 45) of traffic on loopback. The figures are
written to `soak.json` in the test's temp dir and printed (run with `-s` to see them); the long
run for a release is `WHISPER_API_SOAK_SECONDS=600 pytest tests/test_soak.py -s`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import openai
import pytest
import requests

from tests.support.media import transcode
from tests.support.server import ServerProcess, rss_bytes, worker_pids

SOAK_SECONDS = float(os.environ.get("WHISPER_API_SOAK_SECONDS", "45"))
CLIENTS = int(os.environ.get("WHISPER_API_SOAK_CLIENTS", "6"))
WORKERS = 2
#: Growth of a worker's memory from its first minute to the end that counts as unbounded.
RSS_GROWTH_LIMIT = 150 * 1024 * 1024
TRANSCRIBE = "/v1/audio/transcriptions"


def _is_jfk(text: str) -> bool:
    text = text.lower()
    return "fellow americans" in text and "your country" in text


class Soak:
    """Shared state of one soak run: outcomes, latencies and memory samples."""

    def __init__(self, server: ServerProcess, uploads: dict[str, bytes]) -> None:
        self.server = server
        self.uploads = uploads
        self.lock = threading.Lock()
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self.rss: dict[int, list[tuple[float, int]]] = {}
        self.stop = threading.Event()
        self.started = time.monotonic()

    def record(self, outcome: str, failure: str | None = None, latency: float | None = None) -> None:
        with self.lock:
            self.outcomes[outcome] += 1
            if failure:
                self.failures.append(failure)
            if latency is not None:
                self.latencies.append(latency)

    # --- requests ---------------------------------------------------------------------------------

    def valid(self, sdk: openai.OpenAI, name: str) -> None:
        started = time.monotonic()
        try:
            text = sdk.audio.transcriptions.create(model="whisper-1", file=(name, self.uploads[name])).text
        except openai.RateLimitError:
            self.record("valid: 429 after retries (retryable)")
            return
        except openai.APIConnectionError as exc:
            self.record("valid: LOST", f"{name}: connection failed after retries: {exc}")
            return
        except openai.APIStatusError as exc:
            self.record("valid: WRONG STATUS", f"{name}: {exc.status_code} {exc.message}")
            return
        if _is_jfk(text):
            self.record("valid: correct transcript", latency=time.monotonic() - started)
        else:
            self.record("valid: WRONG TEXT", f"{name}: {text!r}")

    def invalid(self, kind: str, send: Callable[[], requests.Response], expected: int) -> None:
        for attempt in range(3):  # one caught by the kill may be dropped; a client resends it
            try:
                response = send()
                break
            except requests.ConnectionError:
                if attempt == 2:
                    self.record("invalid: LOST", f"{kind}: connection failed 3 times")
                    return
                time.sleep(0.5)
        if response.status_code == 429:
            self.record("invalid: 429 (retryable)")
        elif response.status_code == expected and "error" in response.json():
            self.record(f"invalid: {expected} as expected")
        else:
            self.record("invalid: WRONG STATUS", f"{kind}: {response.status_code} {response.text[:200]}")

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        url = self.server.base_url
        sdk = openai.OpenAI(base_url=url + "/v1", api_key="soak", max_retries=3, timeout=300)

        def post(files, data) -> requests.Response:
            return requests.post(url + TRANSCRIBE, files=files, data=data, timeout=300)

        invalid = [
            (
                "random bytes",
                lambda: post({"file": ("a.mp3", os.urandom(20_000))}, {"model": "whisper-1"}),
                400,
            ),
            ("text as wav", lambda: post({"file": ("a.wav", b"hello\n" * 50)}, {"model": "whisper-1"}), 400),
            ("empty file", lambda: post({"file": ("a.wav", b"")}, {"model": "whisper-1"}), 400),
            (
                "unknown model",
                lambda: post({"file": ("a.flac", self.uploads["jfk.flac"])}, {"model": "nope"}),
                404,
            ),
            (
                "temperature",
                lambda: post(
                    {"file": ("a.flac", self.uploads["jfk.flac"])}, {"model": "x", "temperature": "9"}
                ),
                400,
            ),
        ]
        with sdk:
            while not self.stop.is_set():
                if rng.random() < 0.5:
                    self.valid(sdk, rng.choice(sorted(self.uploads)))
                else:
                    self.invalid(*rng.choice(invalid))

    def sample_memory(self) -> None:
        while not self.stop.wait(1.0):
            now = time.monotonic() - self.started
            for pid in worker_pids(self.server.process.pid):
                rss = rss_bytes(pid)
                if rss:
                    self.rss.setdefault(pid, []).append((now, rss))


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("soak")
    env = {"WHISPER_MODEL": "tiny.en", "WHISPER_API_WORKERS": str(WORKERS), "WHISPER_API_CPU_THREADS": "1"}
    server = ServerProcess(env, root / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


def test_soak_loses_no_valid_request_through_a_worker_kill(
    soak_server: ServerProcess, jfk_bytes: bytes, tmp_path: Path
) -> None:
    uploads = {
        "jfk.flac": jfk_bytes,
        "jfk.mp3": transcode(jfk_bytes, "mp3", "libmp3lame"),
        "jfk.wav": transcode(jfk_bytes, "wav", "pcm_s16le"),
    }
    soak = Soak(soak_server, uploads)
    threads = [threading.Thread(target=soak.client, args=(i,), daemon=True) for i in range(CLIENTS)]
    sampler = threading.Thread(target=soak.sample_memory, daemon=True)
    for thread in [*threads, sampler]:
        thread.start()

    time.sleep(SOAK_SECONDS / 2)
    victims = worker_pids(soak_server.process.pid)
    victim = victims[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic() - soak.started
    time.sleep(SOAK_SECONDS / 2)
    soak.stop.set()
    for thread in threads:
        thread.join(600)
    sampler.join(10)
    elapsed = time.monotonic() - soak.started

    workers_after = worker_pids(soak_server.process.pid)
    ready = requests.get(soak_server.base_url + "/ready", timeout=30).status_code
    figures = _figures(soak, elapsed, killed_at, victim, workers_after)
    (tmp_path / "soak.json").write_text(json.dumps(figures, indent=2))
    print("\nsoak figures:", json.dumps(figures, indent=2))  # noqa: T201 - the closing note's numbers

    assert soak.failures == []
    assert soak.outcomes["valid: correct transcript"] >= CLIENTS
    assert len(workers_after) == WORKERS and victim not in workers_after
    assert ready == 200
    for pid, growth in figures["rss_growth_bytes_per_worker"].items():
        assert growth < RSS_GROWTH_LIMIT, f"worker {pid} grew by {growth} bytes"


def _figures(soak: Soak, elapsed: float, killed_at: float, victim: int, workers_after: list[int]) -> dict:
    latencies = sorted(soak.latencies)
    growth = {}
    peak = {}
    for pid, samples in soak.rss.items():
        peak[str(pid)] = max(rss for _, rss in samples)
        settled = [rss for t, rss in samples if t >= samples[0][0] + min(10.0, SOAK_SECONDS / 4)]
        if pid != victim and len(settled) >= 3:
            # From the highest of its first third: a replacement worker on a loaded machine may
            # still be loading its model 10 s after it appeared (one CI run measured that load,
            # 170 MB, as growth); a leak still shows between the first third and the end.
            growth[str(pid)] = settled[-1] - max(settled[: max(1, len(settled) // 3)])
    return {
        "seconds": round(elapsed, 1),
        "clients": CLIENTS,
        "workers": WORKERS,
        "killed_worker_at_s": round(killed_at, 1),
        "requests": sum(soak.outcomes.values()),
        "outcomes": dict(soak.outcomes),
        "transcripts_per_minute": round(soak.outcomes["valid: correct transcript"] * 60 / elapsed, 1),
        "latency_s_p50": round(statistics.median(latencies), 2) if latencies else None,
        "latency_s_p95": round(latencies[int(0.95 * (len(latencies) - 1))], 2) if latencies else None,
        "latency_s_max": round(latencies[-1], 2) if latencies else None,
        "peak_rss_mib_per_worker": {pid: round(v / 2**20, 1) for pid, v in peak.items()},
        "rss_growth_bytes_per_worker": growth,
        "workers_after": workers_after,
    }
