"""Early answers go out first; then the rest of the upload is read (bounded), so proxies receive them."""

from __future__ import annotations

import time

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
    chunks.close()  # the server closes the answer once it is written: the drain runs then
    leftover = stream.read()
    builder.close()
    return statuses[0], leftover


def test_an_upload_over_the_limit_is_read_to_the_end_after_the_413(app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    status, leftover = _answer_to(app, b"x" * (limit * 3 // 2))
    assert status.startswith("413")
    assert leftover == b""


def test_a_body_beyond_twice_the_limit_is_not_read(app: Flask) -> None:
    size = app.config["MAX_CONTENT_LENGTH"] * 9 // 4
    status, leftover = _answer_to(app, b"x" * size)
    assert status.startswith("413")
    assert len(leftover) == size


def test_the_answer_is_complete_before_anything_is_drained(app: Flask) -> None:
    builder = EnvironBuilder(
        path="/v1/audio/transcriptions",
        method="POST",
        data=b"x" * (app.config["MAX_CONTENT_LENGTH"] * 3 // 2),
        content_type="multipart/form-data; boundary=x",
    )
    environ = builder.get_environ()
    upload = environ["wsgi.input"]
    size = len(upload.getvalue())
    chunks = app.wsgi_app(environ, lambda status, headers, exc_info=None: None)
    body = b"".join(chunks)
    assert b'"request_too_large"' in body
    assert upload.tell() < size  # the answer did not wait for the upload
    chunks.close()
    assert upload.tell() == size
    builder.close()


def test_a_drain_stops_at_its_time_limit() -> None:
    from whisper_api.web.drain import drain

    class Trickle:
        read_calls = 0

        def read(self, size: int) -> bytes:
            self.read_calls += 1
            time.sleep(0.05)
            return b"x"

    stream = Trickle()
    drain(stream, limit=10**9, seconds=0.3)
    assert 1 <= stream.read_calls < 50
