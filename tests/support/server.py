"""The real server for tests: the package's own gunicorn helper (the benchmark uses it too)."""

from __future__ import annotations

from whisper_api.server_process import ROOT, ServerProcess, free_port, rss_bytes, worker_pids

__all__ = ["ROOT", "ServerProcess", "free_port", "rss_bytes", "worker_pids"]
