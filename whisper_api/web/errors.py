"""One handler turns every error (ours, marshmallow's, Werkzeug's, unexpected) into OpenAI's shape."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, has_request_context, request
from marshmallow import Schema, ValidationError, fields
from werkzeug.exceptions import HTTPException

from whisper_api.errors import (
    ApiError,
    InternalError,
    InvalidRequestError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    client_error_class,
)
from whisper_api.web.responses import json_response

logger = logging.getLogger(__name__)

FORM_MIMETYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})


class ErrorBodySchema(Schema):
    message = fields.String(required=True)
    type = fields.String(required=True)
    param = fields.String(required=True, allow_none=True)
    code = fields.String(required=True, allow_none=True)


class ErrorSchema(Schema):
    """OpenAI's error envelope, used for every 4xx and 5xx."""

    error = fields.Nested(ErrorBodySchema, required=True)


_ERROR = ErrorSchema()


def error_response(error: ApiError) -> Response:
    headers = dict(error.headers)
    if error.status >= 500 and error.status != 503:
        headers.setdefault("x-should-retry", "false")  # retrying a server fault repeats it
    return json_response(_ERROR.dump(error.to_dict()), error.status, headers)


def from_validation_error(exc: ValidationError, *, form: bool = False) -> InvalidRequestError:
    """A 400 for the first problem, `param` naming its field by full path (`messages[0].content`).

    A form's list field is named as the client sent it, without an item index.
    """
    path, detail = _first_problem(exc.normalized_messages(), index_lists=not form)
    if not path:
        return InvalidRequestError(detail)
    return InvalidRequestError(f"Invalid value for '{path}': {detail}", param=path)


def _first_problem(messages: Any, path: str = "", *, index_lists: bool = True) -> tuple[str, str]:
    """Walk marshmallow's nested error dict down to the first message, building `a[0].b.c`."""
    if isinstance(messages, dict) and messages:
        key, value = next(iter(messages.items()))
        if key == "_schema" or (isinstance(key, int) and not index_lists):
            step = ""
        elif isinstance(key, int):
            step = f"[{key}]"
        else:
            step = f".{key}" if path else str(key)
        return _first_problem(value, path + step, index_lists=index_lists)
    if isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, (dict, list)):
            return _first_problem(first, path, index_lists=index_lists)
        return path, str(first)
    return path, str(messages)


def from_http_exception(exc: HTTPException) -> ApiError:
    status = exc.code or 500
    if status == 404:
        return NotFoundError("Unknown request URL. Please check the URL and method.")
    if status == 405:
        return MethodNotAllowedError("Method not allowed for this URL.")
    if 400 <= status < 500:
        return client_error_class(status)(exc.description or "Bad request.")
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
        form = has_request_context() and request.mimetype in FORM_MIMETYPES
        return error_response(from_validation_error(exc, form=form))

    @app.errorhandler(HTTPException)
    def handle_http_exception(exc: HTTPException) -> Response:
        if exc.code == 413:  # handlers run inside the request: its length says which limit
            return error_response(too_large_error())
        return error_response(from_http_exception(exc))

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception) -> Response:
        logger.exception("unhandled error")
        return error_response(InternalError("The server had an error while processing your request."))
