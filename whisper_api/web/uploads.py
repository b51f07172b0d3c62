"""Request handling that keeps uploads in memory: nothing is ever written under a client's name."""

from __future__ import annotations

import io
from typing import IO

from flask import Request

from whisper_api.errors import InvalidRequestError


class InMemoryRequest(Request):
    """Multipart file parts are buffered in memory (the body size is capped by the app)."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        return io.BytesIO()


def read_upload(request: Request, field: str = "file") -> bytes:
    """The bytes of the uploaded file part, or a 400 naming the field."""
    if not (request.mimetype or "").startswith("multipart/form-data"):
        raise InvalidRequestError(
            "The request must be multipart/form-data with the audio in the 'file' field.",
            param=field,
        )
    upload = request.files.get(field)
    if upload is None:
        raise InvalidRequestError(f"Missing required parameter: '{field}'.", param=field)
    return upload.read()
