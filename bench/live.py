"""Live audio for the Realtime benchmark and tests: speech as the raw PCM a microphone client streams, and a
paced sender that sends it as fast as it is spoken."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable

import av
import numpy as np

from whisper_api.engine.audio import decode_audio


def pcm16(data: bytes, rate: int = 24_000) -> bytes:
    """Decoded speech as little-endian 16-bit mono PCM at `rate` (OpenAI's default: 24 kHz)."""
    samples = decode_audio(data).samples
    frame = av.AudioFrame.from_ndarray(
        (np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono"
    )
    frame.sample_rate = 16_000
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    out = resampler.resample(frame) + resampler.resample(None)
    return b"".join(bytes(f.to_ndarray().astype("<i2").tobytes()) for f in out)


def silence(seconds: float, rate: int = 24_000) -> bytes:
    return bytes(2 * int(seconds * rate))


async def send_paced(
    send: Callable[[str], Awaitable[None]],
    pcm: bytes,
    *,
    rate: int = 24_000,
    chunk_ms: int = 40,
    speed: float = 1.0,
) -> None:
    """Send `pcm` base64-encoded in `chunk_ms` pieces, each when it would have been spoken."""
    step = 2 * rate * chunk_ms // 1000
    started = time.monotonic()
    for n, offset in enumerate(range(0, len(pcm), step)):
        await send(base64.b64encode(pcm[offset : offset + step]).decode())
        due = started + (n + 1) * chunk_ms / 1000 / speed
        await asyncio.sleep(max(0.0, due - time.monotonic()))
