"""Start the real server (gunicorn + wsgi:app) for one configuration and watch its workers."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import requests

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
_LOADED = re.compile(r"loaded (?:\S+ )?model \S+ from .* in (?P<seconds>[0-9.]+)s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class BenchServer:
    """gunicorn serving whisper_api on a free loopback port with the given environment."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = log_path
        self.env = {
            **os.environ,
            "WHISPER_API_BIND": f"127.0.0.1:{self.port}",
            "WHISPER_API_LOG_LEVEL": "info",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds = 0.0

    def start(self, timeout: float = 300.0) -> BenchServer:
        """Start and wait until every worker has loaded its model and /ready answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        gunicorn = Path(sys.executable).with_name("gunicorn")
        started = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if len(self.load_seconds()) >= self.workers and self._answers_ready():
                self.ready_seconds = time.perf_counter() - started
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()}")

    def _answers_ready(self) -> bool:
        try:
            return requests.get(self.base_url + "/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def load_seconds(self) -> list[float]:
        """Model load times the workers logged (one line per worker)."""
        return [float(m["seconds"]) for m in _LOADED.finditer(self.log_path.read_text(errors="replace"))]

    def worker_processes(self) -> list[psutil.Process]:
        assert self.process is not None
        return psutil.Process(self.process.pid).children()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
