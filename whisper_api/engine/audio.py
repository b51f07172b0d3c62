"""Decode uploaded bytes into 16 kHz mono float32 samples, in memory, with PyAV.

The container is recognised from the bytes themselves (never from the filename or the part's
content type) and only the demuxers on an allow-list are used. That keeps FFmpeg away from
playlist and reference formats (HLS, concat, ...) that would open other files or URLs.
"""

from __future__ import annotations

import io
import logging

import av
import numpy as np

from whisper_api.engine.types import SAMPLE_RATE, Audio
from whisper_api.errors import AudioDecodeError, InvalidRequestError

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_MPEGTS_PACKET = 188


def sniff_format(data: bytes) -> str | None:
    """Name of the FFmpeg demuxer for these bytes, or None when they are no container we accept."""
    head = data[:16]
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # also webm
    if head[4:8] in _MP4_BOXES:
        return "mov"  # mp4, m4a; external data references stay disabled (FFmpeg default)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3":
        return _after_id3(data)
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg"
    if len(data) > 2 * _MPEGTS_PACKET and all(
        data[i] == 0x47 for i in (0, _MPEGTS_PACKET, 2 * _MPEGTS_PACKET)
    ):
        return "mpegts"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync: layer bits 00 mean ADTS AAC, anything else MPEG layer I-III.
        return "aac" if head[1] & 0x06 == 0 else "mp3"
    return None


def _after_id3(data: bytes) -> str:
    """ID3 tags precede mp3 and sometimes AAC/FLAC streams: look behind the tag."""
    if len(data) < 10:
        return "mp3"
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    inner = sniff_format(data[10 + size :]) if len(data) > 10 + size + 4 else None
    return inner if inner in ("flac", "aac") else "mp3"


def decode_audio(data: bytes, *, max_seconds: float | None = None) -> Audio:
    """Decode a whole upload; raise AudioDecodeError for anything that is not usable speech input."""
    if not data:
        raise AudioDecodeError("The audio file is empty.")
    fmt = sniff_format(data)
    if fmt is None:
        raise AudioDecodeError("Invalid file format. Supported formats: " + str(list(SUPPORTED_FORMATS)))
    max_samples = int(max_seconds * SAMPLE_RATE) if max_seconds else None
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", format=fmt, metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise AudioDecodeError("The file contains no audio stream.")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += len(chunk)
                if max_samples is not None and total > max_samples:
                    raise InvalidRequestError(
                        f"The audio is longer than the maximum of {max_seconds:.0f} seconds.",
                        param="file",
                        code="audio_too_long",
                    )
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        logger.info("audio decode failed: %s", type(exc).__name__)
        raise AudioDecodeError() from exc
    if not chunks:
        raise AudioDecodeError("The audio file contains no decodable audio.")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    if samples.size == 0:
        raise AudioDecodeError("The audio file contains no decodable audio.")
    return Audio(samples=samples)


def _frames(container: av.container.InputContainer, stream: av.AudioStream):
    """Decoded frames; a damaged packet ends decoding only once something was decoded before it."""
    decoded_any = False
    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            if decoded_any:
                continue
            raise
        for frame in frames:
            decoded_any = True
            yield frame
