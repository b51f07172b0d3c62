"""Answers the server writes itself, before or around the app: OpenAI's JSON error, never HTML.

gunicorn reports a malformed request (bad request line, header, chunk framing, transfer coding,
a forwarded `SCRIPT_NAME` that is not a prefix of the path) with an HTML page, and some of those
as 500 or 501. Every one of them is the client's mistake: here each becomes a 4xx with the body
`{"error": {"message", "type", "param", "code"}}`, as the app's own errors are.
"""

from __future__ import annotations

import json
import ssl
from http import HTTPStatus

from gunicorn.http import errors as http_errors

from whisper_api.errors import ApiError, InternalError, client_error_class

#: Parse errors whose status says more than a plain 400.
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (http_errors.LimitRequestLine, 414),
    (http_errors.LimitRequestHeaders, 431),
    (http_errors.ExpectationFailed, 417),
    (http_errors.ForbiddenProxyRequest, 403),
    (ssl.SSLError, 400),
)


def protocol_error(exc: BaseException) -> ApiError:
    """The client-facing error for an exception raised while gunicorn read a request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, http_errors.ParseException | ssl.SSLError):
        status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
        return client_error_class(status)(
            f"The HTTP request is malformed: {exc}", code="invalid_http_request"
        )
    return InternalError("The server had an error while processing your request.")


def is_client_mistake(exc: BaseException) -> bool:
    return protocol_error(exc).status < 500


def error_bytes(error: ApiError) -> bytes:
    """A complete HTTP/1.1 response (closing the connection) carrying `error` as OpenAI's JSON."""
    body = json.dumps(error.to_dict(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    reason = HTTPStatus(error.status).phrase if error.status in HTTPStatus._value2member_map_ else "Error"
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": str(len(body)),
        "Connection": "close",
        **error.headers,
    }
    if error.status >= 500 and error.status != 503:
        headers.setdefault("x-should-retry", "false")
    head = f"HTTP/1.1 {error.status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return head.encode("latin-1") + b"\r\n" + body
