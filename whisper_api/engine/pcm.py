"""Raw audio as live clients send it (PCM16 and G.711), turned into 16 kHz mono float32 as it arrives.

OpenAI's Realtime API takes little-endian 16-bit PCM (24 kHz by default) or 8 kHz G.711 (mu-law and
A-law). `PcmDecoder` converts each chunk as it comes; its resampler keeps its filter state between
chunks, so a stream cut into 20 ms pieces sounds the same as one cut into seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import av
import numpy as np

from whisper_api.engine.types import SAMPLE_RATE

Encoding = Literal["pcm16", "pcmu", "pcma"]
G711_RATE = 8_000


@dataclass(frozen=True)
class InputFormat:
    """How a live stream's bytes are encoded."""

    encoding: Encoding = "pcm16"
    rate: int = 24_000

    @property
    def bytes_per_second(self) -> int:
        return self.rate * (2 if self.encoding == "pcm16" else 1)


def _mulaw_table() -> np.ndarray:
    """ITU-T G.711 mu-law: byte -> linear 16-bit value."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    """ITU-T G.711 A-law: byte -> linear 16-bit value."""
    code = np.arange(256, dtype=np.int32) ^ 0x55
    sign = code & 0x80
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


_G711 = {"pcmu": _mulaw_table(), "pcma": _alaw_table()}


class PcmDecoder:
    """Turns a stream's byte chunks into 16 kHz float32 samples, keeping state between chunks."""

    def __init__(self, fmt: InputFormat) -> None:
        self.format = fmt
        self._pending = b""  # half a PCM16 sample, left over from the last chunk
        self._resampler = (
            None
            if fmt.rate == SAMPLE_RATE
            else av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        )

    def decode(self, data: bytes) -> np.ndarray:
        """The samples in `data` (and any byte left over from before), at 16 kHz."""
        if self.format.encoding == "pcm16":
            data = self._pending + data
            usable = len(data) - len(data) % 2
            self._pending = data[usable:]
            pcm = np.frombuffer(data[:usable], dtype="<i2")
        else:
            pcm = _G711[self.format.encoding][np.frombuffer(data, dtype=np.uint8)]
        if pcm.size == 0:
            return np.zeros(0, dtype=np.float32)
        if self._resampler is None:
            return (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.reshape(1, -1)), format="s16", layout="mono"
        )
        frame.sample_rate = self.format.rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)


class PcmEncoder:
    """Float32 samples at any rate into little-endian PCM16 at `rate` (OpenAI's 24 kHz), with state."""

    def __init__(self, source_rate: int, rate: int = 24_000) -> None:
        self.source_rate = source_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def encode(self, samples: np.ndarray) -> bytes:
        if samples.size == 0:
            return b""
        data = np.ascontiguousarray(np.clip(samples, -1, 1).astype(np.float32).reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(data, format="flt", layout="mono")
        frame.sample_rate = self.source_rate
        return b"".join(f.to_ndarray().astype("<i2").tobytes() for f in self._resampler.resample(frame))
