"""A worker's memory does not grow with the audio's length: peak RSS from /proc during long uploads.

A 32 KB FLAC of silence lasting an hour used to add 3.2 GB to a worker (the whole file decoded,
then its features, at once). The bound below is what windowed processing (issue #17: decode,
features and transcription 30 s at a time, whisper_api/engine/windows.py) holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psutil
import pytest
import requests

from bench.server import RssSampler
from tests.support.media import silent_flac
from tests.support.server import ServerProcess, rss_bytes, worker_pids

#: Most a worker may grow above its idle size while it transcribes one upload of any length.
BOUND_BYTES = 512 * 2**20
WATCH_SECONDS = 40  # decoding and the first windows; windowed work stays flat after that


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("memory") / "server.log"
    process = ServerProcess({"WHISPER_MODEL": "tiny.en"}, log).start()
    try:
        yield process
    finally:
        process.stop()


def _peak_growth(server: ServerProcess, upload: bytes) -> tuple[int, int]:
    """(idle RSS, peak growth above it) of the worker while it works on `upload` (streamed)."""
    worker = worker_pids(server.process.pid)[0]
    idle = rss_bytes(worker)
    with (
        RssSampler([psutil.Process(worker)], interval=0.05) as sampler,
        requests.post(
            server.base_url + "/v1/audio/transcriptions",
            files={"file": ("silence.flac", upload)},
            data={"model": "whisper-1", "stream": "true"},
            stream=True,
            timeout=120,
        ) as answer,
    ):
        assert answer.status_code == 200, answer.text
        stop = time.monotonic() + WATCH_SECONDS
        for _ in answer.iter_lines():
            if time.monotonic() > stop:
                break  # hanging up stops the work; the peak is behind us
    return idle, max(idle, sampler.peaks[worker]) - idle


@pytest.mark.parametrize("minutes", [60])
def test_peak_worker_memory_during_a_long_silent_upload_stays_bounded(
    server: ServerProcess, minutes: int
) -> None:
    upload = silent_flac(minutes * 60)
    assert len(upload) < 1_000_000
    idle, growth = _peak_growth(server, upload)
    assert growth < BOUND_BYTES, (
        f"{minutes} min: worker grew {growth / 2**20:.0f} MiB above {idle / 2**20:.0f}"
    )
