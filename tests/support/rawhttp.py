"""HTTP at the socket level, for requests no well-behaved client library would send."""

from __future__ import annotations

import contextlib
import json
import select
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3 import encode_multipart_formdata


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    body_bytes_sent: int

    def json(self) -> dict:
        return json.loads(self.body)


def multipart(fields: dict[str, str | tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    return encode_multipart_formdata(fields)


def read_response(sock: socket.socket, sent: int = 0, timeout: float = 300) -> RawResponse:
    """Read one HTTP/1.1 response with a Content-Length body (`timeout`: per read)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(status, headers, body, sent)


def post_streaming(
    base_url: str,
    path: str,
    headers: dict[str, str],
    body_chunks,
    *,
    chunked: bool,
) -> RawResponse:
    """POST a body piece by piece; stop sending as soon as the server has answered.

    `body_bytes_sent` tells how much of the body went out before the answer came.
    """
    url = urlsplit(base_url)
    sock = socket.create_connection((url.hostname, url.port), timeout=30)
    try:
        head = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent = 0
        for chunk in body_chunks:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
            try:
                sock.sendall(frame)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        else:
            if chunked:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(b"0\r\n\r\n")
        return read_response(sock, sent)
    finally:
        sock.close()


def post_raw(base_url: str, path: str, head_lines: list[str], body: bytes) -> RawResponse:
    """POST exactly these header lines and body bytes."""
    url = urlsplit(base_url)
    with socket.create_connection((url.hostname, url.port), timeout=60) as sock:
        head = [f"POST {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close", *head_lines]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return read_response(sock, len(body))
