"""A minimum upload rate: a client that sends its request too slowly loses its thread.

gunicorn reads a request on a blocking socket. A client sending one byte a second (or nothing)
would hold the thread for as long as it likes. `PacedSocket` stands between gunicorn's reader and
the socket: by `t` seconds after the request was handed to a thread, it must have sent at least
`(t - grace) * min_rate` bytes, else the read fails with a 408 (`RequestTimeoutError`).
"""

from __future__ import annotations

import socket
import time
from typing import Any

from whisper_api.errors import RequestTimeoutError

SLOW_CLIENT_MESSAGE = (
    "The request was sent too slowly (see WHISPER_API_BODY_TIMEOUT and WHISPER_API_MIN_BODY_RATE)."
)


class PacedSocket:
    """The reading side of a client socket, with a deadline that moves with the bytes received."""

    def __init__(self, sock: socket.socket, grace: float, min_rate: float) -> None:
        self._sock = sock
        self._grace = grace
        self._min_rate = max(1.0, min_rate)
        self._started = time.monotonic()
        self._received = 0
        self._caller_timeout: float | None = None
        self._failed = False

    def restart(self) -> None:
        """A new request on the same connection gets its own allowance."""
        self._started = time.monotonic()
        self._received = 0

    def _remaining(self) -> float:
        allowed = self._grace + self._received / self._min_rate
        return self._started + allowed - time.monotonic()

    def recv(self, size: int) -> bytes:
        if self._failed:
            raise self._fail()
        # Past the allowance, bytes already waiting are still taken (the app may have started
        # reading late); only waiting for more is refused.
        remaining = max(0.0, self._remaining())
        timeout = remaining if self._caller_timeout is None else min(remaining, self._caller_timeout)
        self._sock.settimeout(timeout)
        try:
            data = self._sock.recv(size)
        except (TimeoutError, BlockingIOError):
            if self._caller_timeout is not None and self._caller_timeout < remaining:
                raise TimeoutError from None  # the caller's own bound (gunicorn's drain), not ours
            raise self._fail() from None
        finally:
            self._sock.settimeout(None)  # writes to this socket must not inherit a read deadline
        self._received += len(data)
        return data

    def _fail(self) -> RequestTimeoutError:
        self._failed = True
        return RequestTimeoutError(SLOW_CLIENT_MESSAGE)

    # gunicorn's body drain bounds its reads with these; they apply to our reads only.
    def gettimeout(self) -> float | None:
        return self._caller_timeout

    def settimeout(self, timeout: float | None) -> None:
        self._caller_timeout = timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)
