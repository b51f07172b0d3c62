"""Start the real server (gunicorn + wsgi:app) on a free loopback port, wait until it is ready, stop it.

Used by the tests and the benchmark, which both drive the server as a client would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A gunicorn process serving whisper_api with the given environment (one worker by default)."""

    #: Settings under the caller's `env`: one small worker, enough threads for a test's requests.
    DEFAULTS: dict[str, str] = {"WHISPER_API_WORKERS": "1", "WHISPER_API_THREADS": "4"}

    def __init__(
        self, env: dict[str, str], log_path: Path, command: list[str] | None = None, cwd: Path = ROOT
    ) -> None:
        self.port = free_port()
        # The checkout's gunicorn and wsgi:app unless told otherwise (an installed `whisper-api`).
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.command = command or [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"]
        self.cwd = cwd
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "WHISPER_API_BIND": f"127.0.0.1:{self.port}",
            **self.DEFAULTS,
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds = 0.0

    def start(self, timeout: float = 120.0, *, ready: Callable[[], bool] | None = None) -> ServerProcess:
        """Start, then wait until `/ready` answers 200 (and `ready()` holds, when given)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout, ready or (lambda: True))
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.perf_counter() - started
        return self

    def _wait_ready(self, timeout: float, ready: Callable[[], bool]) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if ready() and self._answers_ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()}")

    def _answers_ready(self) -> bool:
        try:
            return requests.get(self.base_url + "/ready", timeout=2).status_code == 200
        except requests.RequestException:  # not listening yet, or the worker is still loading
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is not None:
            self.process.wait()
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def worker_pids(master_pid: int) -> list[int]:
    """The gunicorn workers (children) of a master process, from /proc."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except OSError:
        return []


def rss_bytes(pid: int) -> int:
    """Resident memory of a process, from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
