"""Build test media in memory with PyAV (no ffmpeg binary): every container OpenAI accepts, and
hostile files for the robustness tests."""

from __future__ import annotations

import io
import struct
import wave
from pathlib import Path

import av
import numpy as np

from bench.clips import silent_flac
from whisper_api.engine.audio import decode_audio

__all__ = ["silent_flac"]

#: (container format, codec, extension) for every upload type OpenAI lists.
CONTAINERS = {
    "flac": ("flac", "flac"),
    "mp3": ("mp3", "libmp3lame"),
    "wav": ("wav", "pcm_s16le"),
    "ogg": ("ogg", "libopus"),
    "oga": ("ogg", "libopus"),
    "webm": ("webm", "libopus"),
    "m4a": ("ipod", "aac"),
    "mp4": ("mp4", "aac"),
    "mpeg": ("mpeg", "mp2"),
    "ts": ("mpegts", "mp2"),
    "mpga": ("mp3", "libmp3lame"),
}


def speech_samples(data: bytes) -> np.ndarray:
    return decode_audio(data).samples


def encode(samples: np.ndarray, container: str, codec: str, rate: int = 16_000) -> bytes:
    """Encode mono float32 16 kHz samples into `container` with `codec`."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate if codec != "libopus" else 48_000)
        stream.layout = "mono"
        resampler = av.AudioResampler(
            format=stream.codec_context.format or "s16", layout="mono", rate=stream.rate
        )
        frame_size = stream.codec_context.frame_size or 1024
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        source_frames = []
        for start in range(0, len(pcm), frame_size):
            chunk = pcm[start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 16_000
            source_frames.append(frame)
        for frame in source_frames:
            for resampled in resampler.resample(frame):
                for packet in stream.encode(resampled):
                    out.mux(packet)
        for resampled in resampler.resample(None):
            for packet in stream.encode(resampled):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def transcode(source: Path | bytes, fmt: str, codec: str, rate: int = 16_000) -> bytes:
    """`source` re-encoded as mono `codec` in a `fmt` container."""
    data = source.read_bytes() if isinstance(source, Path) else source
    out_buf = io.BytesIO()
    with av.open(io.BytesIO(data)) as src, av.open(out_buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        fmt_name = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt_name, layout="mono", rate=rate)
        for frame in src.decode(audio=0):
            for chunk in resampler.resample(frame):
                for packet in stream.encode(chunk):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return out_buf.getvalue()


def without_declared_length(flac: bytes) -> bytes:
    """The same FLAC with STREAMINFO's total-samples set to 0 ("unknown"), as a liar would."""
    data = bytearray(flac)
    assert data[:4] == b"fLaC"
    data[21] &= 0xF0  # the low 36 bits of bytes 21-25 hold the total number of samples
    data[22:26] = bytes(4)
    return bytes(data)


def wav_bytes(samples: np.ndarray, rate: int = 16_000) -> bytes:
    """16-bit mono WAV of float samples in [-1, 1]."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def float_wav_bytes(samples: np.ndarray, rate: int = 16_000, dtype: str = "<f4") -> bytes:
    """Mono IEEE-float WAV (format 3) of `samples` as they are: NaN, infinities and all."""
    data = np.asarray(samples).astype(dtype).tobytes()
    width = np.dtype(dtype).itemsize
    fmt = struct.pack("<HHIIHH", 3, 1, rate, rate * width, width, 8 * width)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append((kind, data[offset + 8 : offset + size]))
        offset += size
    return boxes


def _alias_record(path: str) -> bytes:
    """A QuickTime `alis` data reference whose absolute path (record type 2) is `path`."""
    encoded = path.encode()
    name = encoded.rsplit(b"/", 1)[-1][:63]
    fixed = (
        bytes(10)  # user type, record size, version, kind
        + bytes(1 + 27)  # volume name (length-prefixed)
        + bytes(12)  # volume date, fs type, disk type
        + bytes([len(name)])
        + name.ljust(63, b"\0")  # file name (length-prefixed)
        + bytes(16)  # parent dir id, file number, date, type, creator
        + struct.pack(">hh", -1, -1)  # nlvl_from, nlvl_to: unknown
        + bytes(16)
    )
    padded = encoded + (b"\0" if len(encoded) % 2 else b"")
    records = struct.pack(">hH", 2, len(encoded)) + padded + struct.pack(">hH", -1, 0)
    body = fixed + records
    return struct.pack(">I4sI", 12 + len(body), b"alis", 0) + body


def with_external_reference(mp4: bytes, target: Path) -> bytes:
    """`mp4` whose samples live in `target` (a `dref` alias), with its own sample data zeroed.

    When `target` is a copy of `mp4` and a demuxer follows the reference, it decodes `target`'s
    audio: a transcript would reveal that the server read a file it was never sent.
    """

    def rewrite(data: bytes) -> bytes:
        out = b""
        for kind, body in _boxes(data):
            if kind in (b"moov", b"trak", b"mdia", b"minf", b"dinf"):
                body = rewrite(body)
            elif kind == b"dref":
                body = struct.pack(">II", 0, 1) + _alias_record(str(target))
            elif kind == b"mdat":
                body = bytes(len(body))
            out += struct.pack(">I4s", 8 + len(body), kind) + body
        return out

    kinds = [kind for kind, _ in _boxes(mp4)]
    assert kinds.index(b"mdat") < kinds.index(b"moov"), "moov must follow mdat so offsets stay valid"
    return rewrite(mp4)


def hls_playlist(target: Path) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:11\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:11.0,\n{target}\n#EXTINF:11.0,\nfile://{target}\n#EXT-X-ENDLIST\n"
    ).encode()


def concat_playlist(target: Path) -> bytes:
    return f"ffconcat version 1.0\nfile '{target}'\nfile 'file:{target}'\n".encode()
