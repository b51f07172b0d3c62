"""After an early answer (413, 401, 429, ...), read a bounded part of the unread body, then close.

The answer goes out first, at once: a client still uploading sees its 429 while it sends. Then
the connection is not simply closed: a body left unread makes the kernel reset the connection,
and a reverse proxy still sending the upload (nginx with `proxy_request_buffering off`) would
turn the reset into a 502. So the rest of the body is read and discarded, up to `limit` bytes
and `seconds` seconds (a slow sender is also cut off by the worker's minimum body rate); what is
still unread after that is gunicorn's to drop, and the connection closes.
"""

from __future__ import annotations

import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

from whisper_api.errors import ApiError

_CHUNK = 16 * 1024  # small reads: the time limit is checked between them


def drain(stream, limit: int, seconds: float = float("inf")) -> None:  # noqa: ANN001 - a WSGI input
    """Read and discard up to `limit` bytes of `stream` within about `seconds`."""
    deadline = time.monotonic() + seconds
    remaining = limit
    try:
        while remaining > 0 and time.monotonic() < deadline:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except (HTTPException, ApiError, OSError, ValueError):
        return  # the body stream refuses more (over its limit, too slow, or the client went away)


def register(app: Flask, limit: int, seconds: float) -> None:
    """Drain unread bodies of up to `limit` bytes once the answer is sent; larger ones are cut off."""

    @app.after_request
    def drain_after_answer(response: Response) -> Response:
        declared = request.content_length
        if declared is not None and declared > limit:
            return response
        # The body stream that parsing used knows how much it consumed; reading the raw socket
        # instead would block past the body's end on servers that do not bound wsgi.input.
        stream = request.__dict__.get("stream") or get_input_stream(
            request.environ, safe_fallback=True, max_content_length=None
        )
        response.call_on_close(lambda: drain(stream, limit, seconds))  # after the answer is written
        return response
