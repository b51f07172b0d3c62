"""Decode uploaded bytes into 16 kHz mono float32 samples, in memory, with PyAV.

The container is recognised from the bytes themselves (never from the filename or the part's
content type) and only the demuxers on an allow-list are used. That keeps FFmpeg away from
playlist and reference formats (HLS, concat, ...) that would open other files or URLs.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator

import av
import numpy as np

from whisper_api.engine.types import SAMPLE_RATE, Audio
from whisper_api.errors import AudioDecodeError, AudioTooLongError, DeadlineExceededError

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
_MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")
_MPEGTS_PACKET = 188
#: Every demuxer `sniff_format` can choose; FFmpeg may open no other (no hls, concat, ...).
_DEMUXERS = ("wav", "flac", "ogg", "matroska", "mov", "aiff", "mp3", "mpeg", "mpegts", "aac")


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


def demuxer_options(fmt: str) -> dict[str, str]:
    """FFmpeg options that keep a demuxer inside the uploaded bytes.

    Nothing we accept needs a second file: no protocol may be opened (the upload itself is read
    through our own I/O context), no nested demuxer outside the allow-list, and MOV/MP4 data
    references (`dref` aliases and URLs) are neither followed nor resolved as absolute paths.
    """
    options = {"protocol_whitelist": "none", "format_whitelist": ",".join(_DEMUXERS)}
    if fmt == "mov":
        options |= {"enable_drefs": "0", "use_absolute_path": "0"}
    return options


def declared_seconds(container: av.container.InputContainer, stream: av.AudioStream) -> float | None:
    """The length the headers claim, before anything is decoded (None when they do not say)."""
    claims = []
    if container.duration is not None and container.duration > 0:
        claims.append(container.duration / av.time_base)
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        claims.append(float(stream.duration * stream.time_base))
    return max(claims) if claims else None


def decode_audio(
    data: bytes,
    *,
    max_seconds: float | None = None,
    timeout: float | None = None,
    keep_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Audio:
    """Decode a whole upload; raise AudioDecodeError for anything that is not usable speech input.

    `max_seconds` refuses long audio from its headers when they say so, else as soon as that much
    is decoded. `timeout` bounds the decoding time: it grows by 1 s per 10 s of audio produced,
    so a long file is decoded whole and a decoder that spins without output is stopped.
    Audio longer than `keep_seconds` is decoded to the end (to validate and measure it) without
    keeping its samples: the returned Audio decodes it again, block by block, as it is read, so
    memory does not grow with the file's length.
    """
    if not data:
        raise AudioDecodeError("The audio file is empty.")
    fmt = sniff_format(data)
    if fmt is None:
        raise AudioDecodeError("Invalid file format. Supported formats: " + str(list(SUPPORTED_FORMATS)))
    max_samples = int(max_seconds * SAMPLE_RATE) if max_seconds else None
    keep_samples = int(keep_seconds * SAMPLE_RATE) if keep_seconds else None
    started = clock()
    chunks: list[np.ndarray] = []
    total = 0
    kept = True
    try:
        with av.open(
            io.BytesIO(data), mode="r", format=fmt, options=demuxer_options(fmt), metadata_errors="ignore"
        ) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise AudioDecodeError("The file contains no audio stream.")
            if max_seconds:
                declared = declared_seconds(container, stream)
                if declared is not None and declared > max_seconds:
                    raise AudioTooLongError(max_seconds)
                # Headers may be silent or lie: sum the packets' durations (cheap, nothing is
                # decoded or kept) so a small file that unpacks into hours is refused before
                # it costs decoding time and memory.
                if _demuxed_seconds(data, fmt, stop_after=max_seconds) > max_seconds:
                    raise AudioTooLongError(max_seconds)

            def check_deadline() -> None:
                if timeout is not None and clock() - started > timeout + total / SAMPLE_RATE / 10:
                    raise DeadlineExceededError("Decoding the audio took too long; the file may be damaged.")

            for chunk in _resampled(container, stream, check_deadline):
                total += len(chunk)
                if max_samples is not None and total > max_samples:
                    raise AudioTooLongError(max_seconds or 0)
                if kept and keep_samples is not None and total > keep_samples:
                    kept = False
                    chunks = []
                if kept:
                    chunks.append(chunk)
    except (av.FFmpegError, ValueError) as exc:  # PyAV raises ValueError on frames it cannot convert
        logger.info("audio decode failed: %s", type(exc).__name__)
        raise AudioDecodeError() from exc
    if total == 0:
        raise AudioDecodeError("The audio file contains no decodable audio.")
    if not kept:
        length = total
        return Audio(
            np.zeros(0, dtype=np.float32), length=length, redecode=lambda: _redecode(data, fmt, length)
        )
    return Audio(samples=np.concatenate(chunks).astype(np.float32, copy=False))


def _resampled(
    container: av.container.InputContainer, stream: av.AudioStream, before_packet: Callable[[], None]
) -> Iterator[np.ndarray]:
    """The stream as 16 kHz mono float32 blocks."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    shape = None
    for frame in _frames(container, stream, before_packet):
        if shape is not None and _shape(frame) != shape:
            # A damaged stream can switch rate or layout mid-way (a corrupt mp3 header):
            # finish what the old resampler holds and start a new one for the rest.
            yield from (_block(out) for out in resampler.resample(None))
            resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        shape = _shape(frame)
        yield from (_block(out) for out in resampler.resample(frame))
    yield from (_block(out) for out in resampler.resample(None))


def _block(frame: av.AudioFrame) -> np.ndarray:
    return clean_samples(frame.to_ndarray().reshape(-1).astype(np.float32, copy=False))


def _redecode(data: bytes, fmt: str, length: int) -> Iterator[np.ndarray]:
    """Decode an upload again, as `decode_audio` did; exactly `length` samples in all."""
    produced = 0
    try:
        with av.open(
            io.BytesIO(data), mode="r", format=fmt, options=demuxer_options(fmt), metadata_errors="ignore"
        ) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            for chunk in _resampled(container, stream, lambda: None):
                chunk = chunk[: length - produced].astype(np.float32, copy=False)
                produced += len(chunk)
                if len(chunk):
                    yield chunk
    except (av.FFmpegError, ValueError) as exc:
        raise AudioDecodeError() from exc
    if produced < length:
        yield np.zeros(length - produced, dtype=np.float32)


def clean_samples(samples: np.ndarray) -> np.ndarray:
    """Samples the model can digest, in place: NaN and infinities become silence, the rest is
    clipped to [-1, 1]. A float WAV full of NaN otherwise makes every window's features NaN, and
    the decoder spins to its token limit on garbage."""
    np.nan_to_num(samples, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    np.clip(samples, -1.0, 1.0, out=samples)
    return samples


def _shape(frame: av.AudioFrame) -> tuple[str, str, int]:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _demuxed_seconds(data: bytes, fmt: str, *, stop_after: float) -> float:
    """Seconds of audio the packets announce, counted without decoding (stops past `stop_after`)."""
    with av.open(io.BytesIO(data), mode="r", format=fmt, options=demuxer_options(fmt)) as container:
        stream = next(s for s in container.streams if s.type == "audio")
        if stream.time_base is None:
            return 0.0
        ticks = 0
        limit = stop_after / stream.time_base
        for packet in container.demux(stream):
            ticks += packet.duration or 0
            if ticks > limit:
                break
        return float(ticks * stream.time_base)


def _frames(
    container: av.container.InputContainer, stream: av.AudioStream, before_packet: Callable[[], None]
) -> Iterator[av.AudioFrame]:
    """Decoded frames; a damaged packet ends decoding only once something was decoded before it."""
    decoded_any = False
    for packet in container.demux(stream):
        before_packet()
        try:
            frames = packet.decode()
        except av.InvalidDataError:
            if decoded_any:
                continue
            raise
        for frame in frames:
            decoded_any = True
            yield frame
