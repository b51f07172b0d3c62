"""Read what is left of a request body before answering early (413, 401, 429, ...).

Closing a connection whose request body was not read makes the kernel reset it. A client, or a
reverse proxy still sending the upload (nginx with `proxy_request_buffering off`), then sees a
broken connection instead of our answer: nginx turns it into a 502, and the OpenAI SDKs retry the
whole upload. Reading and discarding the rest (up to a bound) lets the answer arrive.
"""

from __future__ import annotations

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

_CHUNK = 64 * 1024


def drain(stream, limit: int) -> None:  # noqa: ANN001 - any WSGI input stream
    remaining = limit
    try:
        while remaining > 0:
            chunk = stream.read(min(_CHUNK, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
    except (HTTPException, OSError, ValueError):
        return  # the body stream refuses more (over its limit, or the client went away)


def register(app: Flask, limit: int) -> None:
    """Drain unread bodies of up to `limit` bytes; larger ones are cut off as before."""

    @app.after_request
    def drain_unread_body(response: Response) -> Response:
        declared = request.content_length
        if declared is not None and declared > limit:
            return response
        # The body stream that parsing used knows how much it consumed; reading the raw socket
        # instead would block past the body's end on servers that do not bound wsgi.input.
        stream = request.__dict__.get("stream") or get_input_stream(
            request.environ, safe_fallback=True, max_content_length=None
        )
        drain(stream, limit)
        return response
