"""The real server for tests: the package's own gunicorn helper (the benchmark uses it too)."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from whisper_api.server_process import ROOT, ServerProcess, free_port, rss_bytes, worker_pids

__all__ = [
    "ROOT",
    "ServerProcess",
    "admitted",
    "free_port",
    "rss_bytes",
    "wait_until_admitted",
    "worker_pids",
]


def admitted(base_url: str) -> int:
    """Requests the answering worker holds a place for (running or queued), as `/ready` reports."""
    return requests.get(base_url + "/ready", timeout=10).json()["requests"]["admitted"]


def wait_until_admitted(
    base_url: str, count: int, within: float = 60.0, explain: Callable[[], str] = lambda: ""
) -> None:
    """Until the (single) worker reports exactly `count` requests admitted; fails after `within` s
    with `explain()` (a server log) in the message."""
    deadline = time.monotonic() + within
    while (now := admitted(base_url)) != count:
        assert time.monotonic() < deadline, f"the worker holds {now} requests, not {count}\n{explain()}"
        time.sleep(0.05)
