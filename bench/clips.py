"""The benchmark's audio: the shared clips, the 71 s reference clip and long files built from them.

Every clip carries the reference text of the part a human can check, so word error rate can be
reported next to every speed figure. Long clips are built only from pieces with known text.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from bench.coverage import Passage
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
GERMAN_START = 31.0
GAP_SECONDS = 0.5
#: How often the long language-switching clips repeat ref71 (3.5 and 10.6 minutes).
REF71_REPEATS = (3, 9)
#: Held-out speech: sentences written here, never recorded, spoken by the installed Piper voice when
#: the bench runs. The voice samples its timing and tone from ONNX Runtime's random generator, which
#: is seeded (HELD_OUT_SEED) before the voice loads: every run hears the same audio (unseeded, the
#: verdict on this clip moved by a word between runs).
HELD_OUT_SENTENCES = (
    "The library on the corner opens an hour later on public holidays.",
    "Her grandfather repaired old clocks in a small workshop behind the station.",
    "We counted the fishing boats in the harbor before the fog came in.",
    "Please leave the blue folder on the desk next to the printer.",
    "The orchestra rehearsed the second movement until almost midnight.",
    "A gentle rain fell on the village while the children walked home from school.",
    "The engineers replaced every cable in the tunnel over a single weekend.",
    "My cousin grows tomatoes, beans and pumpkins in her garden by the river.",
    "Nobody expected the quiet student to win the national chess tournament.",
    "The museum will display the painting again after the restoration is finished.",
    "Fresh bread is delivered to the cafe every morning before sunrise.",
    "The mountain road was closed for most of the week because of heavy snow.",
    "Our neighbor painted the kitchen a warm shade of yellow last spring.",
    "The pilot announced that the flight would land earlier than planned.",
    "A small dog followed the mail carrier along the whole street.",
    "The committee postponed its decision until the new report arrives.",
    "He forgot his umbrella on the bus and walked home in the rain.",
    "The teacher asked the students to read the first chapter before class.",
    "Several farmers brought apples and honey to the market on Saturday.",
    "The bridge was painted bright red so that ships could see it in the fog.",
    "She wrote a long letter to her brother who lives by the sea.",
    "The old theater reopened with a concert of folk songs and dances.",
    "Please turn off the lights and lock the door when you leave the office.",
    "The scientists measured the temperature of the lake every evening.",
    "A strong wind blew the leaves across the empty parking lot.",
    "The baker showed us how to fold the dough before it goes into the oven.",
    "Many visitors stopped to photograph the castle on the hill.",
    "The doctor recommended a short walk after every meal.",
    "Their garden was full of roses, lavender and tall sunflowers.",
    "The train stopped briefly at a quiet station in the valley.",
    "He spent the afternoon fixing the wheel of his grandson's bicycle.",
    "The hotel kitchen prepares a simple breakfast for early guests.",
    "Children from the village school planted trees along the river bank.",
    "The council agreed to build a new playground near the library.",
    "A fisherman told us stories about the storms he had survived.",
    "The exhibition explains how people built houses before electricity.",
)
HELD_OUT_GAP_SECONDS = 0.8
HELD_OUT_SEED = 1717


@dataclass(frozen=True)
class Clip:
    """One benchmark input: a file to upload and the text of its checkable part."""

    name: str
    path: Path
    duration: float
    reference: str
    #: WER counts only segments starting before this time (None: see `passages`).
    scored_until: float | None = None
    #: where the speech is; WER counts only segments starting inside passages with text when
    #: some passage has none, and the coverage check uses all of them
    passages: tuple[Passage, ...] = ()

    @property
    def partly_scored(self) -> bool:
        return self.scored_until is not None or any(p.text is None for p in self.passages)


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
    write_wav_at(path, samples, SAMPLE_RATE)


def write_wav_at(path: Path | BinaryIO, samples: np.ndarray, rate: int) -> None:
    """16-bit mono WAV at `rate`."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path) if isinstance(path, Path) else path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def _fill(pieces: list[_Piece], seconds: float) -> tuple[np.ndarray, str, tuple[Passage, ...]]:
    """Pieces in turn, each followed by a short gap, while they fit; then silence to `seconds`."""
    total = int(seconds * SAMPLE_RATE)
    gap = np.zeros(int(GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    texts: list[str] = []
    passages: list[Passage] = []
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
        passages.append(Passage(used / SAMPLE_RATE, (used + len(piece.samples)) / SAMPLE_RATE, piece.text))
        used += len(piece.samples) + len(gap)
    parts.append(np.zeros(total - used, dtype=np.float32))
    return np.concatenate(parts), " ".join(texts), tuple(passages)


def ref71_passages(jfk_seconds: float, offset: float = 0.0) -> tuple[Passage, ...]:
    """jfk, then multilingual.mp3: its English paragraph, a pause, its German translation."""
    return (
        Passage(offset, offset + jfk_seconds, JFK_TEXT),
        Passage(offset + jfk_seconds, offset + jfk_seconds + MIT_ENGLISH_END - 1.0, MIT_ENGLISH_TEXT),
        Passage(offset + jfk_seconds + GERMAN_START, offset + jfk_seconds + 59.9),
    )


def ref71_samples(audio_dir: Path) -> tuple[np.ndarray, float]:
    """The 71 s reference clip (jfk + multilingual.mp3) and the length of its jfk part."""
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    multilingual = decode_audio((audio_dir / "multilingual.mp3").read_bytes()).samples
    return np.concatenate([jfk, multilingual]), len(jfk) / SAMPLE_RATE


def repeated_ref71(audio_dir: Path, out_dir: Path, repeats: int) -> Clip:
    """ref71 `repeats` times: English and German alternate, as in a long bilingual meeting."""
    ref71, jfk_seconds = ref71_samples(audio_dir)
    samples = np.tile(ref71, repeats)
    path = out_dir / f"ref71x{repeats}.wav"
    write_wav(path, samples)
    step = len(ref71) / SAMPLE_RATE
    passages = tuple(p for i in range(repeats) for p in ref71_passages(jfk_seconds, i * step))
    return Clip(
        f"ref71x{repeats}",
        path,
        len(samples) / SAMPLE_RATE,
        " ".join(p.text for p in passages if p.text),
        passages=passages,
    )


def build_clips(
    audio_dir: Path,
    out_dir: Path,
    long_seconds: tuple[float, ...],
    ref71_repeats: tuple[int, ...] = (),
) -> dict[str, Clip]:
    """Write the benchmark inputs into `out_dir`; return them by name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    multilingual = decode_audio((audio_dir / "multilingual.mp3").read_bytes()).samples
    left, right = _channels(audio_dir / "stereo_diarization.wav")

    clips = {
        "jfk": Clip(
            "jfk",
            audio_dir / "jfk.flac",
            len(jfk) / SAMPLE_RATE,
            JFK_TEXT,
            passages=(Passage(0.0, len(jfk) / SAMPLE_RATE, JFK_TEXT),),
        ),
    }
    ref71 = np.concatenate([jfk, multilingual])
    ref71_path = out_dir / "ref71.wav"
    write_wav(ref71_path, ref71)
    clips["ref71"] = Clip(
        "ref71",
        ref71_path,
        len(ref71) / SAMPLE_RATE,
        JFK_TEXT + " " + MIT_ENGLISH_TEXT,
        # Scored by passage (the German one has no reference), not up to a time: a German segment
        # may start up to a second before its passage and would be scored as English errors.
        passages=ref71_passages(len(jfk) / SAMPLE_RATE),
    )
    pieces = [
        _Piece(jfk, JFK_TEXT),
        _Piece(multilingual[: int(MIT_ENGLISH_END * SAMPLE_RATE)], MIT_ENGLISH_TEXT),
        _Piece(left, LEFT_TEXT),
        _Piece(right, RIGHT_TEXT),
    ]
    for seconds in long_seconds:
        name = f"long{seconds:g}"
        samples, text, passages = _fill(pieces, seconds)
        path = out_dir / f"{name}.wav"
        write_wav(path, samples)
        clips[name] = Clip(name, path, len(samples) / SAMPLE_RATE, text, passages=passages)
    for repeats in ref71_repeats:
        clip = repeated_ref71(audio_dir, out_dir, repeats)
        clips[clip.name] = clip
    return clips


def silent_flac(seconds: float, rate: int = 8_000) -> bytes:
    """A small FLAC holding `seconds` of digital silence (hours compress to a few hundred KB)."""
    buffer = io.BytesIO()
    block = rate * 10
    zeros = np.zeros((1, block), dtype=np.int16)
    with av.open(buffer, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        written = 0
        while written < seconds * rate:
            frame = av.AudioFrame.from_ndarray(zeros, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = written
            for packet in stream.encode(frame):
                out.mux(packet)
            written += block
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def short_clip(audio_dir: Path, out_dir: Path, seconds: float = 3.0) -> Clip:
    """The first seconds of jfk.flac: a tiny input for the smoke test (scored on its first words)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples[: int(seconds * SAMPLE_RATE)]
    path = out_dir / "short.wav"
    write_wav(path, samples)
    return Clip("short", path, len(samples) / SAMPLE_RATE, "And so, my fellow Americans")


def held_out_clip(out_dir: Path, voices_dir: Path | None) -> Clip | None:
    """The held-out sentences spoken by the first installed voice, one after the other with a short
    gap (None when no voice or no speech engine is installed)."""
    from whisper_api.engine.speech import SpeechOptions
    from whisper_api.engine.voices import VoiceCatalog

    catalog = VoiceCatalog(voices_dir, threads=2)
    try:
        import onnxruntime

        # A Piper voice's random nodes draw their generator's seed when its session is created.
        onnxruntime.set_seed(HELD_OUT_SEED)
        name = catalog.preload()
    except Exception:  # noqa: BLE001 - no speech engine: the bench runs without this clip
        return None
    if name is None:
        return None
    voice = catalog.get(name)
    gap = np.zeros(int(HELD_OUT_GAP_SECONDS * SAMPLE_RATE), dtype=np.float32)
    parts: list[np.ndarray] = []
    passages: list[Passage] = []
    used = 0
    for sentence in HELD_OUT_SENTENCES:
        chunks = list(voice.synthesize(sentence, SpeechOptions()))
        spoken = np.concatenate([c.samples for c in chunks])
        wav = io.BytesIO()
        write_wav_at(wav, spoken, chunks[0].sample_rate)
        samples = decode_audio(wav.getvalue()).samples  # resampled to 16 kHz
        parts += [samples, gap]
        passages.append(Passage(used / SAMPLE_RATE, (used + len(samples)) / SAMPLE_RATE, sentence))
        used += len(samples) + len(gap)
    samples = np.concatenate(parts)
    path = out_dir / "heldout.wav"
    write_wav(path, samples)
    return Clip(
        "heldout", path, len(samples) / SAMPLE_RATE, " ".join(HELD_OUT_SENTENCES), passages=tuple(passages)
    )
