"""Every response body the app writes: JSON, plain text, and server-sent events.

One SSE loop (`event_stream`) serves transcription streams, chat streams and the upstream relay:
frames pass through as they are produced; a failure after the status line becomes an error frame
in OpenAI's shape; a client that left ends it quietly; whatever produced the frames is closed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, stream_with_context

from whisper_api.errors import ApiError, ClientDisconnectedError, InternalError

logger = logging.getLogger(__name__)

JSON_MIMETYPE = "application/json; charset=utf-8"
TEXT_MIMETYPE = "text/plain; charset=utf-8"
SSE_MIMETYPE = "text/event-stream; charset=utf-8"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """JSON with UTF-8 text left unescaped and the charset stated (PowerShell 5 needs both)."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    response = Response(text, status=status, content_type=JSON_MIMETYPE)
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def text_response(text: str) -> Response:
    return Response(text, status=200, content_type=TEXT_MIMETYPE)


def sse(payload: dict[str, Any] | str) -> str:
    """One SSE frame: `data: <json>` and a blank line (no `event:`, `id:` or `retry:` lines)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def error_event(exc: Exception, what: str) -> str:
    """The SSE frame reporting a failure after the status line was sent (both SDKs raise on it)."""
    if isinstance(exc, ApiError):
        return sse(exc.to_dict())
    logger.error("%s failed mid-stream", what, exc_info=exc)
    return sse(InternalError("The server had an error while processing your request.").to_dict())


def close_iterator(iterator: object) -> None:
    """Close a generator we stopped reading, which stops the work behind it (decoding, upstream)."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def event_stream(
    frames: Iterator[str], *, source: object, what: str, progress: Callable[[], str] = str
) -> Iterator[str]:
    """`frames`, then `[DONE]`; an error frame if they fail; `source` closed whatever happens.

    `progress` says how far the work got, for the log line written when the client leaves.
    """
    try:
        yield from frames
    except GeneratorExit:  # the server could not write: the client is gone
        logger.info("client closed the %s stream%s; its work stopped", what, progress())
        raise
    except ClientDisconnectedError:  # seen by the admission check between segments
        logger.info("client closed the %s stream%s; its work stopped", what, progress())
        return  # nobody is reading: no error event, no [DONE]
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report it in the stream
        yield error_event(exc, what)
    finally:
        close_iterator(source)  # a no-op once it is exhausted
    yield sse("[DONE]")


def sse_response(events: Iterator[str], *, on_close: Callable[[], None] | None = None) -> Response:
    """A streaming response that proxies (nginx) and the app pass through unbuffered.

    `on_close` runs when the server is done with the response, sent or not: whatever owns the
    request's slot (a `SegmentStream`) is closed there, even if the client left before the first byte.
    """
    response = Response(stream_with_context(events), status=200, content_type=SSE_MIMETYPE)
    if on_close is not None:
        response.call_on_close(on_close)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
