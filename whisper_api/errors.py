"""The one error hierarchy of whisper_api.

Every failure a client can see is an `ApiError`. Subclasses only set the HTTP status, the OpenAI
error `type` and a default `code`; the web layer renders all of them the same way. The engine
raises these too (it needs no HTTP to do so: the status is just a number on the class).
"""

from __future__ import annotations

import functools


class ApiError(Exception):
    """Root of every error a client may receive."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.headers = dict(headers or {})

    def to_dict(self) -> dict[str, dict[str, str | None]]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequestError(ApiError):
    """A field or the body is wrong: the client must change the request."""

    status = 400
    type = "invalid_request_error"


@functools.cache
def client_error_class(status: int) -> type[InvalidRequestError]:
    """The InvalidRequestError subclass for a 4xx status we pass on (Werkzeug's, an upstream's)."""
    if not 400 <= status < 500:
        raise ValueError(f"{status} is not a client error status")
    if status == InvalidRequestError.status:
        return InvalidRequestError
    return type(f"ClientError{status}", (InvalidRequestError,), {"status": status})


class AudioDecodeError(InvalidRequestError):
    """The uploaded audio cannot be decoded, is empty, or is not audio at all."""

    code = "invalid_value"

    def __init__(self, message: str = "Audio file might be corrupted or unsupported") -> None:
        super().__init__(message, param="file")


class AuthenticationError(ApiError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class MissingApiKeyError(AuthenticationError):
    code = None


class NotFoundError(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"

    def __init__(self, model: str, detail: str = "") -> None:
        message = f"The model `{model}` does not exist or you do not have access to it."
        if detail:
            message = f"{message} {detail}"
        super().__init__(message, param="model")


class MethodNotAllowedError(ApiError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class PayloadTooLargeError(ApiError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class ServerBusyError(ApiError):
    status = 429
    type = "server_busy"
    code = "server_busy"


class RequestTimeoutError(ApiError):
    """The client sent its request head or body too slowly (see WHISPER_API_HEADER_TIMEOUT)."""

    status = 408
    type = "invalid_request_error"
    code = "request_timeout"


class TooManyConnectionsError(ApiError):
    """The worker holds as many client connections as it may (WHISPER_API_MAX_CONNECTIONS)."""

    status = 503
    type = "server_error"
    code = "too_many_connections"


class AudioTooLongError(InvalidRequestError):
    """The audio lasts longer than the server accepts (declared or decoded)."""

    code = "audio_too_long"

    def __init__(self, max_seconds: float) -> None:
        super().__init__(f"The audio is longer than the maximum of {max_seconds:.0f} seconds.", param="file")


class DeadlineExceededError(ApiError):
    """Decoding or transcription took longer than its audio-scaled deadline."""

    status = 504
    type = "server_error"
    code = "timeout"


class ClientDisconnectedError(ApiError):
    """The client went away before its result was ready (nginx's 499); nobody reads this."""

    status = 499
    type = "invalid_request_error"
    code = "client_disconnected"


class ModelUnavailableError(ApiError):
    """A model exists in configuration but cannot be loaded here (missing weights, no network)."""

    status = 503
    type = "server_error"
    code = "model_unavailable"


class ModelCapacityError(ModelUnavailableError):
    """A model does not fit in the worker's memory budget, now (others busy) or ever (too large)."""

    code = "model_capacity"


class InternalError(ApiError):
    status = 500
    type = "server_error"
    code = "internal_error"


class UpstreamError(ApiError):
    """The upstream chat model (CHAT_UPSTREAM_BASE_URL) failed or could not be reached."""

    status = 502
    type = "server_error"
    code = "upstream_error"
