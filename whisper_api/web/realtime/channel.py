"""One WebSocket connection, as the Realtime session uses it: JSON events out (from two threads),
text frames in, a close with a code.

simple-websocket does the protocol over the socket gunicorn hands to the view; gunicorn's gthread
worker gives the session its own thread for as long as the connection lasts.
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from typing import Any

from simple_websocket import ConnectionClosed, Server

from whisper_api.errors import ApiError

#: RFC 6455 close codes the sessions use.
NORMAL = 1000
GOING_AWAY = 1001  # the server is shutting down
POLICY = 1008  # a limit was exceeded
TOO_BIG = 1009
INTERNAL = 1011
UNAUTHORIZED = 3000  # IANA's registered code; OpenAI closes with it after a bad key


def new_id(prefix: str) -> str:
    """An OpenAI-looking id such as `event_...`, `item_...`, `sess_...`."""
    return f"{prefix}_{uuid.uuid4().hex[:22]}"


def error_event(exc: ApiError, client_event_id: str | None = None) -> dict[str, Any]:
    """OpenAI's `error` event for `exc`, naming the client event that caused it (if any)."""
    error = {"type": exc.type, "code": exc.code, "message": exc.message, "param": exc.param}
    return {"type": "error", "error": {**error, "event_id": client_event_id}}


class Channel:
    """A server-side WebSocket whose `send` is safe from several threads."""

    def __init__(self, ws: Server) -> None:
        self._ws = ws
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return bool(self._ws.connected)

    @property
    def subprotocol(self) -> str | None:
        return self._ws.subprotocol

    def send(self, event: dict[str, Any]) -> bool:
        """Send one server event (an `event_id` is added); False once the client is gone."""
        event = {"event_id": new_id("event"), **event}
        data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        with self._lock:
            try:
                self._ws.send(data)
            except (ConnectionClosed, OSError):
                return False
        return True

    def receive(self, timeout: float) -> str | bytes | None:
        """The next frame, None after `timeout` seconds; raises ConnectionClosed once closed."""
        return self._ws.receive(timeout=timeout)

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        with self._lock, contextlib.suppress(ConnectionClosed, OSError):
            self._ws.close(reason=code, message=reason[:120])
