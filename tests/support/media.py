"""Build test media in memory with PyAV: any container/codec OpenAI accepts, from real speech."""

from __future__ import annotations

import io

import av
import numpy as np

from whisper_api.engine.audio import decode_audio

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


def wav_bytes(samples: np.ndarray) -> bytes:
    return encode(samples, "wav", "pcm_s16le")
