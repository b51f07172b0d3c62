"""Start the real server (gunicorn + wsgi:app) for one configuration and watch its workers."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path

import psutil

from whisper_api.server_process import ServerProcess

logger = logging.getLogger(__name__)

_LOADED = re.compile(r"loaded (?:\S+ )?model \S+ (?:from .* )?in (?P<seconds>[0-9.]+)s")


def peak_rss_bytes(pid: int) -> int | None:
    """The kernel's high-water mark of resident memory (VmHWM) for a live process."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak_rss(pid: int) -> bool:
    """Start a new high-water mark (`5 > /proc/<pid>/clear_refs`), so each phase gets its own peak."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class RssSampler:
    """Largest resident set seen per process, for systems without /proc/<pid>/status."""

    def __init__(self, processes: list[psutil.Process], interval: float = 0.2) -> None:
        self.peaks: dict[int, int] = {p.pid: 0 for p in processes}
        self._processes = processes
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for process in self._processes:
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    continue
                self.peaks[process.pid] = max(self.peaks[process.pid], rss)
            self._stop.wait(self._interval)


class BenchServer(ServerProcess):
    """The server for one configuration, ready once every worker has loaded its model."""

    #: The server's own defaults are what is measured: only the log level is set here.
    DEFAULTS = {"WHISPER_API_LOG_LEVEL": "info"}

    def __init__(self, env: dict[str, str], log_path: Path, workers: int) -> None:
        super().__init__(env, log_path)
        self.workers = workers

    def start(self, timeout: float = 300.0, *, ready: Callable[[], bool] | None = None) -> BenchServer:
        """Start and wait until every worker has loaded its model and /ready answers."""
        super().start(timeout, ready=ready or (lambda: len(self.load_seconds()) >= self.workers))
        return self

    def load_seconds(self) -> list[float]:
        """Model load times the workers logged (one line per worker)."""
        return [float(m["seconds"]) for m in _LOADED.finditer(self.log_path.read_text(errors="replace"))]

    def worker_processes(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children()
