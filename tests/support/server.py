"""Start the real server (gunicorn + wsgi:app) on a free loopback port for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A gunicorn process serving whisper_api with the given environment."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        command: list[str] | None = None,
        cwd: Path = ROOT,
    ) -> None:
        self.port = free_port()
        # By default the checkout's gunicorn and wsgi:app; an installed `whisper-api` command otherwise.
        self.command = command or [str(Path(sys.executable).with_name("gunicorn")), "-c", "gunicorn.conf.py",
                                   "wsgi:app"]  # fmt: skip
        self.cwd = cwd
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "WHISPER_API_BIND": f"127.0.0.1:{self.port}",
            "WHISPER_API_WORKERS": "1",
            "WHISPER_API_THREADS": "4",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 120.0) -> ServerProcess:
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
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(self.base_url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or the worker is still loading
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()}")

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
