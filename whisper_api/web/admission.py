"""Backpressure: a few transcriptions per worker, a short queue behind them, 429 past that.

A request takes a `Slot` before its upload is parsed, so a full worker answers at once instead
of reading 25 MB it cannot serve. While a request waits or runs, `Slot.check` stops it when its
audio-scaled deadline has passed or its client has hung up, which frees the slot for others.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from whisper_api.errors import ClientDisconnectedError, DeadlineExceededError, ServerBusyError
from whisper_api.web import metrics
from whisper_api.web.responses import close_iterator

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: How often a waiting request looks whether its client is still there, in seconds.
_POLL_SECONDS = 0.25


def client_gone(environ: dict[str, Any]) -> bool:
    """True once the client closed its side of the connection (gunicorn exposes the socket)."""
    sock = environ.get("gunicorn.socket")
    if not isinstance(sock, socket.socket):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing sent: the client is waiting for us
    except OSError:
        return True


class Admission:
    """Per-worker limit on running and waiting transcriptions (thread-safe)."""

    def __init__(self, max_running: int, max_waiting: int, wait_timeout: float) -> None:
        self.max_running = max(1, max_running)
        self.max_waiting = max(0, max_waiting)
        self.wait_timeout = wait_timeout
        self._running = threading.Semaphore(self.max_running)
        self._lock = threading.Lock()
        self._admitted = 0

    @property
    def admitted(self) -> int:
        """Requests holding a slot or waiting for one."""
        with self._lock:
            return self._admitted

    def describe(self) -> dict[str, int]:
        """This worker's load, for `/ready`: admitted requests and how many it takes at most."""
        return {"admitted": self.admitted, "capacity": self.max_running + self.max_waiting}

    def enter(self, is_gone: Callable[[], bool] = lambda: False) -> Slot:
        """A place in this worker (running or queued), or ServerBusyError at once.

        Nothing waits here: the caller reads its upload, then `Slot.wait_turn` queues it.
        """
        with self._lock:
            if self._admitted >= self.max_running + self.max_waiting:
                metrics.reject("queue_full")
                raise self._busy()
            self._admitted += 1
        return Slot(self, is_gone)

    def _acquire(self, slot: Slot) -> None:
        self._wait_for_running(slot)
        metrics.SLOTS_BUSY.inc()

    def _wait_for_running(self, slot: Slot) -> None:
        if self._running.acquire(blocking=False):
            return
        deadline = time.monotonic() + self.wait_timeout
        with metrics.waiting_in_queue():
            while not self._running.acquire(timeout=_POLL_SECONDS):
                if slot.gone():
                    metrics.reject("client_gone")
                    raise ClientDisconnectedError("The client closed the connection while queued.")
                if time.monotonic() > deadline:
                    metrics.reject("queue_timeout")
                    raise self._busy()

    def _release(self, running: bool) -> None:
        if running:
            metrics.SLOTS_BUSY.dec()
            self._running.release()
        with self._lock:
            self._admitted -= 1

    def _busy(self) -> ServerBusyError:
        retry_after = max(1, round(self.wait_timeout / 4))
        return ServerBusyError(
            "The server is busy with other transcriptions. Please retry after a short wait.",
            headers={"Retry-After": str(retry_after)},
        )


class Slot:
    """One admitted request; `release` is idempotent and must always be called."""

    def __init__(self, admission: Admission, is_gone: Callable[[], bool]) -> None:
        self._admission = admission
        self.gone = is_gone
        self._running = False
        self._released = False
        self._lock = threading.Lock()
        self.deadline: float | None = None

    def wait_turn(self) -> None:
        """Block until one of the worker's running places is ours (or raise 429 / disconnect)."""
        if self._running:
            return
        self._admission._acquire(self)
        self._running = True

    def set_deadline(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def check(self) -> None:
        """Stop work nobody will read, or that overran its deadline."""
        if self.gone():
            raise ClientDisconnectedError("The client closed the connection.")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineExceededError(
                "The transcription took longer than its time limit "
                "(see WHISPER_API_TIMEOUT_BASE and WHISPER_API_TIMEOUT_PER_AUDIO_SECOND)."
            )

    def guard(self, items: Iterator[T]) -> Iterator[T]:
        """`items`, checked before each next one is computed."""
        try:
            self.check()
            for item in items:
                yield item
                self.check()
        finally:
            close_iterator(items)  # stop the engine's decoding loop too

    def release(self) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        self._admission._release(self._running)
