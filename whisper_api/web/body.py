"""The request body as the client sent it, with its mistakes reported as 400s (never a 500).

- `guard_input` wraps `wsgi.input`: a framing error the server finds while the app reads the body
  (a chunk size that is not hex, a chunk without its CRLF, a NUL in a trailer) is the client's
  `InvalidRequestError`, not an unexpected exception.
- `load_json_body` parses a JSON body and refuses what Python would choke on later: nesting deeper
  than `MAX_JSON_DEPTH` (a RecursionError in parsing, copying or validating) and lone UTF-16
  surrogates (`"\\ud800"`), which no UTF-8 text can carry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Request

from whisper_api.errors import ApiError, InvalidRequestError

#: Deepest nesting of arrays and objects a JSON body may have (OpenAI's requests need about 6).
MAX_JSON_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class GuardedInput:
    """A WSGI input stream whose parse errors become the client's 400."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def _guarded(self, method: Callable[..., Any], *args: Any) -> Any:
        try:
            return method(*args)
        except (ApiError, OSError):
            raise  # already ours (a slow client's 408), or the connection itself failed
        except Exception as exc:  # noqa: BLE001 - the server's body parser found the framing broken
            raise InvalidRequestError(f"The request body is malformed: {exc}", code="invalid_body") from exc

    def read(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.read, size)

    def readline(self, size: int | None = -1) -> bytes:
        return self._guarded(self._stream.readline, size)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return self._guarded(self._stream.readlines, hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def guard_input(app: WsgiApp) -> WsgiApp:
    """WSGI middleware installing `GuardedInput`."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None and not isinstance(stream, GuardedInput):
            environ["wsgi.input"] = GuardedInput(stream)
        return app(environ, start_response)

    return guarded


def load_json_body(request: Request) -> Any:
    """The parsed JSON body; None when it is not JSON (the schema then says what is missing)."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        raise _too_deep() from None
    check_json_value(data)
    return data


def check_json_value(data: Any) -> None:
    """Refuse nesting past MAX_JSON_DEPTH and strings (or keys) holding lone surrogates."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise InvalidRequestError(
                    "The request body holds a lone UTF-16 surrogate (such as \\ud800) that is not "
                    "valid Unicode text.",
                    code="invalid_json",
                )
        elif isinstance(value, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise _too_deep()
            items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
            for key, item in items:
                if key is not None:
                    stack.append((key, depth + 1))
                stack.append((item, depth + 1))


def _too_deep() -> InvalidRequestError:
    return InvalidRequestError(
        f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).", code="invalid_json"
    )
