"""Malformed and hostile requests against the real server: a 4xx OpenAI error each, and it keeps serving."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.support.media import (
    concat_playlist,
    hls_playlist,
    transcode,
    wav_bytes,
    with_external_reference,
)
from tests.support.rawhttp import multipart, post_raw, post_streaming
from tests.support.server import ServerProcess, worker_pids

UPLOAD_LIMIT = 2_000_000
TRANSCRIBE = "/v1/audio/transcriptions"
SHORT_WAV = wav_bytes(np.zeros(16_000, dtype=np.float32))


class Server:
    def __init__(self, process: ServerProcess, tmpdir: Path) -> None:
        # What the worker wrote before any request (ONNX Runtime's telemetry session file on import).
        self.at_start = set(tmpdir.iterdir())
        self.process = process
        self.url = process.base_url
        self.tmpdir = tmpdir

    def post(self, files=None, data=None, **kwargs) -> requests.Response:
        return requests.post(self.url + TRANSCRIBE, files=files, data=data, timeout=120, **kwargs)

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("hostile")
    tmpdir = root / "tmp"
    tmpdir.mkdir()
    process = ServerProcess(
        {
            "WHISPER_MODEL": "tiny.en",
            "WHISPER_API_MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT),
            "WHISPER_API_MAX_AUDIO_SECONDS": "600",
            "TMPDIR": str(tmpdir),
        },
        root / "server.log",
    ).start()
    try:
        yield Server(process, tmpdir)
    finally:
        process.stop()


def assert_openai_error(response: requests.Response, status: int, param: str | None = "file") -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert error["param"] == param
    return error


# --- media that would make a decoder reach outside the upload ----------------------------------


@pytest.fixture(scope="module")
def jfk_mp4(audio_dir: Path) -> bytes:
    return transcode(audio_dir / "jfk.flac", "mp4", "aac")


@pytest.fixture
def planted(tmp_path: Path, jfk_mp4: bytes) -> dict[str, Path | str]:
    """Secret files the server can read but was never sent, with an old access time."""
    token = "PLANTED-" + uuid.uuid4().hex
    secret_audio = tmp_path / "secret.mp4"
    secret_audio.write_bytes(jfk_mp4)
    secret_text = tmp_path / "secret.txt"
    secret_text.write_text(token + "\n")
    control = tmp_path / "control.txt"
    control.write_text("control\n")
    for path in (secret_audio, secret_text, control):
        os.utime(path, (1_000_000_000, time.time()))  # atime long before mtime: any read updates it
    return {"audio": secret_audio, "text": secret_text, "control": control, "token": token}


def _hostile_uploads(planted: dict, jfk_mp4: bytes) -> dict[str, tuple[str, bytes]]:
    audio, text = planted["audio"], planted["text"]
    return {
        "hls-audio": ("playlist.m3u8", hls_playlist(audio)),
        "hls-text": ("playlist.m3u8", hls_playlist(text)),
        "hls-as-wav": ("speech.wav", hls_playlist(audio)),
        "ffconcat": ("list.ffconcat", concat_playlist(audio)),
        "ffconcat-text": ("list.txt", concat_playlist(text)),
        "mp4-external-reference": ("speech.mp4", with_external_reference(jfk_mp4, audio)),
        "mp4-reference-to-text": ("speech.m4a", with_external_reference(jfk_mp4, text)),
    }


def test_planted_secret_never_leaks_into_a_transcript_an_error_or_the_log(
    server: Server, planted: dict, jfk_mp4: bytes
) -> None:
    atimes = {p: planted[p].stat().st_atime for p in ("audio", "text")}
    for name, upload in _hostile_uploads(planted, jfk_mp4).items():
        for response_format in ("json", "verbose_json"):
            response = server.post(
                files={"file": upload}, data={"model": "whisper-1", "response_format": response_format}
            )
            assert response.status_code == 400, (name, response.text)
            body = response.text
            assert planted["token"] not in body, name
            assert "americans" not in body.lower() and "country" not in body.lower(), name
            assert str(planted["audio"]) not in body and str(planted["text"]) not in body, name
    assert planted["token"] not in server.log()
    planted["control"].read_bytes()
    if planted["control"].stat().st_atime > 1_000_000_000:  # this filesystem records reads
        assert {p: planted[p].stat().st_atime for p in ("audio", "text")} == atimes, "a secret was read"


# --- malformed requests --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jfk_mp3(jfk_bytes: bytes) -> bytes:
    return transcode(jfk_bytes, "mp3", "libmp3lame")


def test_missing_file_is_400_naming_file(server: Server) -> None:
    assert_openai_error(server.post(files={"model": (None, "whisper-1")}), 400)


def test_missing_model_is_400_naming_model(server: Server, jfk_bytes: bytes) -> None:
    assert_openai_error(server.post(files={"file": ("a.flac", jfk_bytes)}), 400, "model")


def test_zero_byte_file_is_400(server: Server) -> None:
    assert_openai_error(server.post(files={"file": ("a.wav", b"")}, data={"model": "whisper-1"}), 400)


def test_random_bytes_are_400(server: Server) -> None:
    response = server.post(files={"file": ("a.mp3", os.urandom(50_000))}, data={"model": "whisper-1"})
    assert_openai_error(response, 400)


def test_text_file_named_wav_is_400(server: Server) -> None:
    response = server.post(files={"file": ("a.wav", b"just some text\n" * 100)}, data={"model": "whisper-1"})
    assert_openai_error(response, 400)


def test_silence_is_an_ordinary_transcript(server: Server) -> None:
    silence = wav_bytes(np.zeros(16_000 * 3, dtype=np.float32))
    response = server.post(files={"file": ("s.wav", silence)}, data={"model": "whisper-1"})
    assert response.status_code == 200
    assert isinstance(response.json()["text"], str)


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.01])
def test_truncated_mp3_is_a_transcript_or_a_400(server: Server, jfk_mp3: bytes, keep: float) -> None:
    data = jfk_mp3[: int(len(jfk_mp3) * keep)]
    response = server.post(files={"file": ("a.mp3", data)}, data={"model": "whisper-1"})
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize("fmt,codec", [("mp3", "libmp3lame"), ("flac", "flac"), ("wav", "pcm_s16le")])
def test_corrupted_audio_is_a_transcript_or_a_400(
    server: Server, jfk_bytes: bytes, fmt: str, codec: str
) -> None:
    data = bytearray(transcode(jfk_bytes, fmt, codec))
    rng = np.random.default_rng(7)
    for offset in rng.integers(0, len(data), size=200):
        data[offset] = int(rng.integers(0, 256))
    response = server.post(files={"file": (f"a.{fmt}", bytes(data))}, data={"model": "whisper-1"})
    assert response.status_code in (200, 400), response.text


@pytest.mark.parametrize("size", [20_000, 1_000_000])
def test_wrong_multipart_boundary_is_an_openai_4xx(server: Server, size: int) -> None:
    # Small bodies read as a form without a file (400); large ones overflow the preamble buffer (413).
    body, _ = multipart({"model": "whisper-1", "file": ("a.wav", bytes(size))})
    headers = [
        "Content-Type: multipart/form-data; boundary=not-the-boundary-used",
        f"Content-Length: {len(body)}",
    ]
    response = post_raw(server.url, TRANSCRIBE, headers, body)
    assert response.status == (400 if size < 500_000 else 413)
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_multipart_without_boundary_is_400(server: Server, jfk_bytes: bytes) -> None:
    body, _ = multipart({"model": "whisper-1", "file": ("a.flac", jfk_bytes)})
    response = post_raw(
        server.url, TRANSCRIBE, ["Content-Type: multipart/form-data", f"Content-Length: {len(body)}"], body
    )
    assert response.status == 400


def test_non_utf8_field_values_are_a_4xx(server: Server, jfk_bytes: bytes) -> None:
    boundary = "b0und4ry"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\n'
        ).encode()
        + b"\xff\xfe\xc3\x28"
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.flac"\r\n'
            "Content-Type: audio/flac\r\n\r\n"
        ).encode()
        + jfk_bytes
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = [f"Content-Type: multipart/form-data; boundary={boundary}", f"Content-Length: {len(body)}"]
    response = post_raw(server.url, TRANSCRIBE, headers, body)
    assert response.status == 400
    assert response.json()["error"]["param"] == "language"


@pytest.mark.parametrize(
    "field,value",
    [
        ("temperature", "1e309"),
        ("temperature", "nan"),
        ("temperature", "-3"),
        ("temperature", "hot"),
        ("language", "klingon"),
        ("language", "x" * 5000),
        ("response_format", "exe"),
        ("response_format", "json" * 1000),
        ("timestamp_granularities[]", "century"),
        ("stream", "perhaps"),
    ],
)
def test_absurd_field_values_are_400_naming_the_field(
    server: Server, jfk_bytes: bytes, field: str, value: str
) -> None:
    response = server.post(files={"file": ("a.flac", jfk_bytes)}, data={"model": "whisper-1", field: value})
    assert_openai_error(response, 400, field.removesuffix("[]"))


def test_huge_prompt_is_413(server: Server) -> None:
    response = server.post(
        files={"file": ("a.wav", SHORT_WAV)}, data={"model": "whisper-1", "prompt": "word " * 120_000}
    )
    error = assert_openai_error(response, 413, None)
    assert "WHISPER_API_MAX_FIELD_BYTES" in error["message"]


def test_ten_thousand_form_fields_are_413(server: Server) -> None:
    data = {f"field{i}": "1" for i in range(10_000)} | {"model": "whisper-1"}
    response = server.post(files={"file": ("a.wav", SHORT_WAV)}, data=data)
    error = assert_openai_error(response, 413, None)
    assert "WHISPER_API_MAX_FORM_PARTS" in error["message"]


def _body_chunks(total: int, size: int = 65_536) -> Iterator[bytes]:
    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    yield head
    sent = len(head)
    while sent < total:
        yield bytes(size)
        sent += size


def test_over_size_body_is_413_before_it_is_read(server: Server) -> None:
    total = 50 * UPLOAD_LIMIT
    response = post_streaming(
        server.url,
        TRANSCRIBE,
        {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(total)},
        _body_chunks(total),
        chunked=False,
    )
    assert response.status == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.body_bytes_sent < total // 2


def test_over_size_chunked_body_is_413_before_it_is_read(server: Server) -> None:
    total = 50 * UPLOAD_LIMIT
    response = post_streaming(
        server.url,
        TRANSCRIBE,
        {"Content-Type": "multipart/form-data; boundary=x"},
        _body_chunks(total),
        chunked=True,
    )
    assert response.status == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert response.body_bytes_sent < total // 2


def test_chunked_body_without_content_length_is_transcribed(server: Server, jfk_bytes: bytes) -> None:
    body, content_type = multipart({"model": "whisper-1", "file": ("jfk.flac", jfk_bytes)})
    pieces = [body[i : i + 7_000] for i in range(0, len(body), 7_000)]
    response = post_streaming(server.url, TRANSCRIBE, {"Content-Type": content_type}, pieces, chunked=True)
    assert response.status == 200
    assert "fellow americans" in response.json()["text"].lower()


def test_server_still_transcribes_after_the_abuse(server: Server, jfk_bytes: bytes) -> None:
    response = server.post(files={"file": ("jfk.flac", jfk_bytes)}, data={"model": "whisper-1"})
    assert response.status_code == 200
    assert "ask not what your country" in response.json()["text"].lower()
    assert requests.get(server.url + "/ready", timeout=5).status_code == 200
    assert "Traceback" not in server.log()


def test_no_request_leaves_a_file_in_the_servers_temp_dir(server: Server) -> None:
    assert set(server.tmpdir.iterdir()) - server.at_start == set()


def test_workers_hold_no_upload_file_open_after_the_requests(server: Server) -> None:
    open_files = []
    for pid in worker_pids(server.process.process.pid):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                open_files.append(os.readlink(fd))
            except OSError:
                continue  # closed while listing
    assert open_files, "no descriptors listed: /proc is not readable here"
    leftovers = [
        target
        for target in open_files
        if target.startswith("/")
        and not target.startswith(("/dev/", "/proc/"))
        and (target.endswith("(deleted)") or target.startswith((str(server.tmpdir), "/tmp/")))
    ]
    assert [t for t in leftovers if not t.endswith("server.log")] == []


def test_part_without_a_name_is_ignored(server: Server) -> None:
    boundary = "nameless"
    body = (
        (
            f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nwho am I\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
        ).encode()
        + SHORT_WAV
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = [f"Content-Type: multipart/form-data; boundary={boundary}", f"Content-Length: {len(body)}"]
    assert post_raw(server.url, TRANSCRIBE, headers, body).status == 200
