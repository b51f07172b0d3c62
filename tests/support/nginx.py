"""Run Debian's nginx on loopback with the shipped deploy/nginx files, for tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.server import ROOT, free_port

DEPLOY = ROOT / "deploy" / "nginx"


def require_tool(name: str, *candidates: str) -> str:
    """Path of a system tool that scripts/test installs; a failure in CI, a skip elsewhere."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    message = f"{name} is not installed (scripts/test installs it with apt-get)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Nginx:
    """nginx in front of `backends`, serving the shipped root and /whisper/ prefix locations."""

    def __init__(self, backends: list[str], workdir: Path, tls: tuple[Path, Path] | None = None) -> None:
        self.binary = require_tool("nginx", "/usr/sbin/nginx")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.backends = backends
        self.tls = tls  # (certificate, key): an extra `listen ... ssl` port for wss:// clients
        self.tls_port = free_port() if tls else None
        self.process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        conf = self.workdir
        shutil.copytree(DEPLOY / "snippets", conf / "snippets", dirs_exist_ok=True)
        for name in ("whisper_api-root.locations", "whisper_api-prefix.locations"):
            shutil.copy(DEPLOY / name, conf / name)
        servers = "\n".join(f"        server {backend};" for backend in self.backends)
        temp = "\n".join(
            f"    {kind}_temp_path {conf}/tmp/{kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (conf / "tmp").mkdir(exist_ok=True)
        tls = ""
        if self.tls is not None:
            cert, key = self.tls
            tls = (
                f"        listen 127.0.0.1:{self.tls_port} ssl;\n"
                f"        ssl_certificate {cert};\n        ssl_certificate_key {key};"
            )
        (conf / "nginx.conf").write_text(
            f"""user root;
worker_processes 1;
daemon off;
pid {conf}/nginx.pid;
error_log {conf}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {conf}/access.log;
{temp}
    map $http_upgrade $whisper_api_connection {{
        default upgrade;
        ""      "";
    }}
    limit_conn_zone $binary_remote_addr zone=whisper_api_per_client:10m;
    upstream whisper_api {{
{servers}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{self.port};
{tls}
        client_header_timeout 15s;
        include whisper_api-root.locations;
        include whisper_api-prefix.locations;
    }}
}}
"""
        )
        return conf / "nginx.conf"

    def start(self, timeout: float = 20.0, ready_path: str | None = "/health") -> Nginx:
        config = self.write_config()
        self.process = subprocess.Popen(
            [self.binary, "-c", str(config), "-p", str(self.workdir), "-e", str(self.workdir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited early:\n{self.error_log()}")
            try:
                answer = requests.get(self.base_url + (ready_path or "/"), timeout=2)
                if ready_path is None or answer.status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"nginx not answering in {timeout}s:\n{self.error_log()}")

    def error_log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
