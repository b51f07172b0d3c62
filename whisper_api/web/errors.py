"""One handler turns every error (ours, marshmallow's, Werkzeug's, unexpected) into OpenAI's shape."""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, has_request_context, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from whisper_api.errors import (
    ApiError,
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
)
from whisper_api.web.responses import json_response

logger = logging.getLogger(__name__)


def error_response(error: ApiError) -> Response:
    headers = dict(error.headers)
    if error.status >= 500 and error.status != 503:
        headers.setdefault("x-should-retry", "false")  # retrying a server fault repeats it
    return json_response(error.to_dict(), error.status, headers)


def from_validation_error(exc: ValidationError) -> InvalidRequestError:
    messages = exc.normalized_messages()
    field, problems = next(iter(messages.items()))
    if isinstance(problems, dict):  # list or nested field: report the first item's problem
        problems = next(iter(problems.values()))
    detail = problems[0] if isinstance(problems, list) and problems else str(problems)
    if field == "_schema":
        return InvalidRequestError(str(detail))
    return InvalidRequestError(f"Invalid value for '{field}': {detail}", param=field)


def from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    if isinstance(exc, RequestEntityTooLarge) or status == 413:
        return PayloadTooLargeError(
            "Maximum content size limit exceeded: the request body is larger than the server "
            "accepts (see WHISPER_API_MAX_UPLOAD_BYTES)."
        )
    if status == 404:
        return NotFoundError("Unknown request URL. Please check the URL and method.")
    if status == 405:
        return MethodNotAllowedError("Method not allowed for this URL.")
    if 400 <= status < 500:
        error = InvalidRequestError(exc.description or "Bad request.")
        error.status = status
        return error
    return InternalError("The server had an error while processing your request.")


def too_large_error() -> PayloadTooLargeError:
    """Which limit a 413 hit: the body (when its length says so), else a form field or part count."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    length = request.content_length
    if limit is not None and (length is None or length > limit):
        return PayloadTooLargeError(
            f"Maximum content size limit ({limit}) exceeded: the request body is larger than the "
            "server accepts (see WHISPER_API_MAX_UPLOAD_BYTES)."
        )
    return PayloadTooLargeError(
        f"The form is too large: a field is over {current_app.config.get('MAX_FORM_MEMORY_SIZE')} "
        f"bytes or there are more than {current_app.config.get('MAX_FORM_PARTS')} parts "
        "(see WHISPER_API_MAX_FIELD_BYTES and WHISPER_API_MAX_FORM_PARTS)."
    )


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def handle_api_error(exc: ApiError) -> Response:
        return error_response(exc)

    @app.errorhandler(ValidationError)
    def handle_validation_error(exc: ValidationError) -> Response:
        return error_response(from_validation_error(exc))

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        if exc.code == 413 and has_request_context():
            return error_response(too_large_error())
        return error_response(from_http_exception(exc))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(InternalError("The server had an error while processing your request."))
