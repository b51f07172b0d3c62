"""Early answers read the rest of the upload first, so proxies and clients receive them."""

from __future__ import annotations

from flask import Flask
from werkzeug.test import EnvironBuilder


def _answer_to(app: Flask, body: bytes) -> tuple[str, bytes]:
    builder = EnvironBuilder(
        path="/v1/audio/transcriptions",
        method="POST",
        data=body,
        content_type="multipart/form-data; boundary=x",
    )
    environ = builder.get_environ()
    stream = environ["wsgi.input"]
    statuses: list[str] = []
    chunks = app.wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(chunks)
    leftover = stream.read()
    builder.close()
    return statuses[0], leftover


def test_an_upload_over_the_limit_is_read_to_the_end_before_the_413(app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    status, leftover = _answer_to(app, b"x" * (limit * 3 // 2))
    assert status.startswith("413")
    assert leftover == b""


def test_a_body_beyond_twice_the_limit_is_not_read(app: Flask) -> None:
    size = app.config["MAX_CONTENT_LENGTH"] * 9 // 4
    status, leftover = _answer_to(app, b"x" * size)
    assert status.startswith("413")
    assert len(leftover) == size
