"""Encode synthesised speech as it is produced: mp3, opus, aac, flac, wav or raw pcm, at 24 kHz mono.

Bytes come out after every piece of audio fed in, so a response can stream them. PyAV (FFmpeg's
libraries, already used to decode uploads) does the resampling and the compressed formats; WAV
and raw PCM are written directly. A streamed WAV cannot know its length in advance, so its RIFF
and data sizes are 0xFFFFFFFF ("until the end"), which decoders accept.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator

import numpy as np

#: The rate OpenAI's speech audio comes at (and what `pcm` means: 24 kHz, s16le, mono).
OUTPUT_RATE = 24_000
FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
#: (container, codec, bit rate) per compressed format.
_CODECS: dict[str, tuple[str, str, int | None]] = {
    "mp3": ("mp3", "libmp3lame", 64_000),
    "opus": ("ogg", "libopus", 32_000),
    "aac": ("adts", "aac", 64_000),
    "flac": ("flac", "flac", None),
}
_UNKNOWN_SIZE = 0xFFFFFFFF


class _Sink:
    """A write-only file for PyAV whose bytes are taken out after each write batch."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class SpeechEncoder:
    """Feeds mono float32 audio at `input_rate` in; encoded bytes of `fmt` out."""

    def __init__(self, fmt: str, input_rate: int) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown speech format {fmt!r}")
        import av

        self.fmt = fmt
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OUTPUT_RATE)
        self._input_rate = input_rate
        self._pts = 0
        self._header_sent = False
        self._container = None
        self._stream = None
        self._sink = _Sink()
        if fmt in _CODECS:
            container, codec, bit_rate = _CODECS[fmt]
            self._container = av.open(self._sink, mode="w", format=container)
            stream = self._container.add_stream(codec, rate=OUTPUT_RATE)
            stream.layout = "mono"
            if bit_rate:
                stream.bit_rate = bit_rate
            self._stream = stream

    def feed(self, samples: np.ndarray) -> bytes:
        """Encoded bytes ready after adding `samples` (may be empty while the encoder buffers)."""
        import av

        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self._input_rate
        frame.pts = self._pts
        self._pts += len(pcm)
        return self._encode(self._resampler.resample(frame))

    def finish(self) -> bytes:
        """The encoder's remaining bytes and the container's trailer."""
        out = self._encode(self._resampler.resample(None))
        if self._container is not None and self._stream is not None:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            self._container = None
            out += self._sink.take()
        elif not self._header_sent and self.fmt == "wav":
            out = wav_header() + out
        return out

    def close(self) -> None:
        """Release FFmpeg's resources without the trailer (a client that went away)."""
        if self._container is not None:
            with contextlib.suppress(Exception):  # half-written output: nothing to save
                self._container.close()
            self._container = None

    def _encode(self, frames: list) -> bytes:
        if self._stream is None or self._container is None:
            data = b"".join(f.to_ndarray().astype("<i2").tobytes() for f in frames)
            if self.fmt == "wav" and not self._header_sent:
                self._header_sent = True
                data = wav_header() + data
            return data
        for frame in frames:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()


def wav_header(rate: int = OUTPUT_RATE) -> bytes:
    """A 16-bit mono WAV header for a stream of unknown length."""
    return (
        b"RIFF"
        + struct.pack("<I", _UNKNOWN_SIZE)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", _UNKNOWN_SIZE)
    )


def encode_all(chunks: Iterator[np.ndarray], fmt: str, input_rate: int) -> Iterator[bytes]:
    """Encoded bytes of every chunk as it arrives, then the trailer (skips empty pieces)."""
    encoder = SpeechEncoder(fmt, input_rate)
    try:
        for samples in chunks:
            data = encoder.feed(samples)
            if data:
                yield data
        tail = encoder.finish()
        if tail:
            yield tail
    finally:
        encoder.close()
