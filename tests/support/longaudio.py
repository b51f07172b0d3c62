"""Longer WAV files built from the real test clips (speech repeated, no synthetic sound)."""

from __future__ import annotations

import io
import wave

import numpy as np

from whisper_api.engine.audio import decode_audio
from whisper_api.engine.types import SAMPLE_RATE


def repeated_wav(
    clip: bytes, repeats: int, *, rate: int = SAMPLE_RATE, channels: int = 1, silence_after: float = 0.0
) -> bytes:
    """`clip` decoded and repeated; `rate` a multiple of 16 kHz, PCM 16-bit (48 kHz stereo: 192 kB/s)."""
    samples = decode_audio(clip, max_seconds=3600).samples
    silence = np.zeros(int(silence_after * SAMPLE_RATE), dtype=samples.dtype)
    pcm = (np.clip(np.concatenate([np.tile(samples, repeats), silence]), -1, 1) * 32767).astype("<i2")
    pcm = np.repeat(pcm, rate // SAMPLE_RATE)  # sample-and-hold upsampling; speech stays intelligible
    pcm = np.repeat(pcm[:, None], channels, axis=1)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())
    return out.getvalue()


def jfk_wav(clip: bytes) -> bytes:
    """The clip as 16 kHz mono WAV (350 kB): small enough for Flask's test client to keep in memory."""
    return repeated_wav(clip, 1)
