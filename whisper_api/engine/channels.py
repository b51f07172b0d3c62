"""The separate channels of a multi-channel upload, for diarization by channel.

Runs after `decode_audio` accepted the same bytes (format, length and decoding time are checked
there), so this only splits what is known to decode.
"""

from __future__ import annotations

import io
import logging

import av
import numpy as np

from whisper_api.engine.audio import demuxer_options, sniff_format
from whisper_api.engine.types import SAMPLE_RATE, Audio
from whisper_api.errors import AudioDecodeError

logger = logging.getLogger(__name__)


def decode_channels(data: bytes, *, max_channels: int, max_seconds: float) -> list[Audio]:
    """Each channel as 16 kHz float32 audio, kept in memory.

    Empty for mono, for more than `max_channels`, or past `max_seconds` (the caller then treats
    the recording as one mixed voice track, which the engine reads window by window).
    """
    max_samples = int(max_seconds * SAMPLE_RATE)
    fmt = sniff_format(data)
    if fmt is None:
        return []
    try:
        with av.open(io.BytesIO(data), mode="r", format=fmt, options=demuxer_options(fmt)) as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                return []
            count = stream.codec_context.channels
            if count < 2 or count > max_channels:
                return []
            resampler = av.AudioResampler(format="fltp", layout=stream.codec_context.layout, rate=SAMPLE_RATE)
            planes: list[np.ndarray] = []
            total = 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    planes.append(out.to_ndarray())
                    total += planes[-1].shape[-1]
                if total > max_samples:
                    logger.info("channels not split: longer than %.0f s", max_seconds)
                    return []
            planes += [out.to_ndarray() for out in resampler.resample(None)]
    except (av.FFmpegError, ValueError) as exc:
        logger.info("channel split failed: %s", type(exc).__name__)
        raise AudioDecodeError() from exc
    if not planes:
        return []
    samples = np.concatenate(planes, axis=1).astype(np.float32, copy=False)
    return [Audio(np.ascontiguousarray(row)) for row in samples]
