"""Decoding refuses hostile and broken media without reading outside the upload (engine only)."""

from __future__ import annotations

import io
import itertools
import os
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.media import (
    concat_playlist,
    hls_playlist,
    silent_flac,
    transcode,
    with_external_reference,
    without_declared_length,
)
from whisper_api.engine import audio as engine_audio
from whisper_api.engine.audio import decode_audio
from whisper_api.errors import AudioDecodeError, AudioTooLongError, DeadlineExceededError


@pytest.fixture(scope="module")
def jfk_mp4(audio_dir: Path) -> bytes:
    return transcode(audio_dir / "jfk.flac", "mp4", "aac")


@pytest.fixture
def secret_mp4(tmp_path: Path, jfk_mp4: bytes) -> Path:
    """A file the server was never sent; reading it would decode to JFK's speech."""
    path = tmp_path / "secret.mp4"
    path.write_bytes(jfk_mp4)
    return path


def _decoded_samples(data: bytes, **options: str) -> int:
    with av.open(io.BytesIO(data), format="mov", options=options) as container:
        return sum(frame.samples for frame in container.decode(audio=0))


def test_external_reference_fixture_reads_the_target_when_ffmpeg_is_allowed_to(
    jfk_mp4: bytes, secret_mp4: Path
) -> None:
    hostile = with_external_reference(jfk_mp4, secret_mp4)
    assert _decoded_samples(hostile, enable_drefs="1", use_absolute_path="1") > 16_000 * 10


def test_mp4_data_reference_to_another_file_is_not_followed(jfk_mp4: bytes, secret_mp4: Path) -> None:
    hostile = with_external_reference(jfk_mp4, secret_mp4)
    with pytest.raises(AudioDecodeError):
        decode_audio(hostile)


def test_no_protocol_can_be_opened_even_if_references_were_enabled(jfk_mp4: bytes, secret_mp4: Path) -> None:
    options = engine_audio.demuxer_options("mov") | {"enable_drefs": "1", "use_absolute_path": "1"}
    assert _decoded_samples(with_external_reference(jfk_mp4, secret_mp4), **options) == 0


@pytest.mark.parametrize("playlist", [hls_playlist, concat_playlist], ids=["m3u8", "ffconcat"])
def test_playlists_are_refused_as_unsupported_format(playlist, secret_mp4: Path) -> None:
    with pytest.raises(AudioDecodeError, match="Invalid file format"):
        decode_audio(playlist(secret_mp4))


def test_playlist_behind_a_wav_header_is_not_a_playlist(secret_mp4: Path) -> None:
    riff = b"RIFF\xff\xff\xff\xffWAVE" + hls_playlist(secret_mp4)
    with pytest.raises(AudioDecodeError):
        decode_audio(riff)


def test_declared_duration_over_the_limit_is_refused_before_decoding(monkeypatch) -> None:
    flac = silent_flac(3 * 3600)
    monkeypatch.setattr(engine_audio.av, "AudioResampler", _must_not_decode)
    with pytest.raises(AudioTooLongError):
        decode_audio(flac, max_seconds=3600)


def test_undeclared_hours_are_refused_by_counting_packets_before_decoding(monkeypatch) -> None:
    flac = without_declared_length(silent_flac(3 * 3600))
    monkeypatch.setattr(engine_audio.av, "AudioResampler", _must_not_decode)
    with pytest.raises(AudioTooLongError):
        decode_audio(flac, max_seconds=3600)


def test_audio_within_the_limit_decodes_whole(jfk_bytes: bytes) -> None:
    assert decode_audio(jfk_bytes, max_seconds=12).duration == pytest.approx(11.0, abs=0.05)


def test_decoding_that_overruns_its_deadline_is_stopped(jfk_bytes: bytes) -> None:
    ticks = itertools.count(step=100.0)  # every clock reading: 100 s later
    with pytest.raises(DeadlineExceededError):
        decode_audio(jfk_bytes, timeout=30, clock=lambda: next(ticks))


def test_deadline_grows_with_the_audio_decoded(jfk_bytes: bytes) -> None:
    ticks = itertools.count(step=0.01)  # 11 s of audio buys 1.1 s past the 0.5 s base
    assert decode_audio(jfk_bytes, timeout=0.5, clock=lambda: next(ticks)).duration > 10


def _must_not_decode(*args, **kwargs):
    raise AssertionError("decoding started although the length was already known to be too long")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is a text file named .wav\n",
        os.urandom(4096),
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        b"fLaC" + os.urandom(200),
        b"ID3\x04\x00\x00\x00\x00\x00\x00" + os.urandom(300),
    ],
    ids=["empty", "text", "random", "wav-header-only", "flac-garbage", "id3-garbage"],
)
def test_non_audio_bytes_are_a_decode_error(data: bytes) -> None:
    with pytest.raises(AudioDecodeError):
        decode_audio(data)


@pytest.mark.parametrize("fmt,codec", [("mp3", "libmp3lame"), ("flac", "flac"), ("wav", "pcm_s16le")])
def test_truncated_audio_decodes_what_is_there_or_is_a_decode_error(
    jfk_bytes: bytes, fmt: str, codec: str
) -> None:
    data = transcode(jfk_bytes, fmt, codec)
    for keep in (len(data) // 2, 64, 12):
        try:
            audio = decode_audio(data[:keep])
        except AudioDecodeError:
            continue
        assert 0 < audio.duration < 11


@pytest.mark.parametrize("fmt,codec", [("mp3", "libmp3lame"), ("flac", "flac"), ("wav", "pcm_s16le")])
def test_corrupted_audio_decodes_or_is_a_decode_error(jfk_bytes: bytes, fmt: str, codec: str) -> None:
    data = bytearray(transcode(jfk_bytes, fmt, codec))
    rng = np.random.default_rng(4)
    for offset in rng.integers(0, len(data), size=len(data) // 50):
        data[offset] ^= 0xFF
    try:
        audio = decode_audio(bytes(data))
    except AudioDecodeError:
        return
    assert audio.samples.dtype == np.float32
