"""The benchmark's audio: the shared clips, the 71 s reference clip and long files built from them.

Every clip carries the reference text of the part a human can check, so word error rate can be
reported next to every speed figure. Long clips are built only from pieces with known text.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from whisper_api.engine.audio import decode_audio
from whisper_api.engine.types import SAMPLE_RATE

JFK_TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, ask what you can do "
    "for your country."
)
MIT_ENGLISH_TEXT = (
    "Permission is hereby granted, free of charge, to any person obtaining a copy of this software "
    'and associated documentation files (the "Software"), to deal in the Software without '
    "restriction, including without limitation the rights to use, copy, modify, merge, publish, "
    "distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the "
    "Software is furnished to do so, subject to the following conditions: The above copyright "
    "notice and this permission notice shall be included in all copies or substantial portions of "
    "the Software."
)
LEFT_TEXT = (
    "He began a confused complaint against the wizard, who had vanished behind the curtain on the left."
)
RIGHT_TEXT = "The horizon seems extremely distant."
#: multilingual.mp3 is English up to 29.0 s, silent until 31.0 s, then German (no reference text).
MIT_ENGLISH_END = 30.0
GAP_SECONDS = 0.5


@dataclass(frozen=True)
class Clip:
    """One benchmark input: a file to upload and the text of its checkable part."""

    name: str
    path: Path
    duration: float
    reference: str
    #: WER counts only segments starting before this time (None: the whole clip has a reference).
    scored_until: float | None = None


@dataclass(frozen=True)
class _Piece:
    samples: np.ndarray
    text: str


def _channels(path: Path) -> list[np.ndarray]:
    """Each channel of a file separately, at 16 kHz float32."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout.name, rate=SAMPLE_RATE)
        chunks = [out.to_ndarray() for frame in container.decode(stream) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray() for out in resampler.resample(None)]
    planar = np.concatenate(chunks, axis=1)
    return [planar[i].astype(np.float32) for i in range(planar.shape[0])]


def write_wav(path: Path | BinaryIO, samples: np.ndarray) -> None:
    """16-bit mono 16 kHz WAV (to a file or a buffer): the container every client can send."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path) if isinstance(path, Path) else path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(pcm.tobytes())


def _fill(pieces: list[_Piece], seconds: float) -> tuple[np.ndarray, str]:
    """Pieces in turn, each followed by a short gap, while they fit; then silence to `seconds`."""
    total = int(seconds * SAMPLE_RATE)
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    texts: list[str] = []
    used = 0
    skipped = 0
    index = 0
    while skipped < len(pieces):
        piece = pieces[index % len(pieces)]
        index += 1
        if used + len(piece.samples) + len(gap) > total:
            skipped += 1
            continue
        skipped = 0
        parts += [piece.samples, gap]
        texts.append(piece.text)
        used += len(piece.samples) + len(gap)
    parts.append(np.zeros(total - used, dtype=np.float32))
    return np.concatenate(parts), " ".join(texts)


def build_clips(audio_dir: Path, out_dir: Path, long_seconds: tuple[float, ...]) -> dict[str, Clip]:
    """Write the benchmark inputs into `out_dir`; return them by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    multilingual = decode_audio((audio_dir / "multilingual.mp3").read_bytes()).samples
    left, right = _channels(audio_dir / "stereo_diarization.wav")

    clips = {
        "jfk": Clip("jfk", audio_dir / "jfk.flac", len(jfk) / SAMPLE_RATE, JFK_TEXT),
    }
    ref71 = np.concatenate([jfk, multilingual])
    ref71_path = out_dir / "ref71.wav"
    write_wav(ref71_path, ref71)
    clips["ref71"] = Clip(
        "ref71",
        ref71_path,
        len(ref71) / SAMPLE_RATE,
        JFK_TEXT + " " + MIT_ENGLISH_TEXT,
        scored_until=len(jfk) / SAMPLE_RATE + MIT_ENGLISH_END,
    )
    pieces = [
        _Piece(jfk, JFK_TEXT),
        _Piece(multilingual[: int(MIT_ENGLISH_END * SAMPLE_RATE)], MIT_ENGLISH_TEXT),
        _Piece(left, LEFT_TEXT),
        _Piece(right, RIGHT_TEXT),
    ]
    for seconds in long_seconds:
        name = f"long{seconds:g}"
        samples, text = _fill(pieces, seconds)
        path = out_dir / f"{name}.wav"
        write_wav(path, samples)
        clips[name] = Clip(name, path, len(samples) / SAMPLE_RATE, text)
    return clips


def short_clip(audio_dir: Path, out_dir: Path, seconds: float = 3.0) -> Clip:
    """The first seconds of jfk.flac: a tiny input for the smoke test (scored on its first words)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples[: int(seconds * SAMPLE_RATE)]
    path = out_dir / "short.wav"
    write_wav(path, samples)
    return Clip("short", path, len(samples) / SAMPLE_RATE, "And so, my fellow Americans")
