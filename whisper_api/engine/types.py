"""Plain records that cross the boundary between the web layer and the engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

Task = Literal["transcribe", "translate"]
SAMPLE_RATE = 16_000
#: Whisper's window: the audio one encoder pass reads.
WINDOW_SECONDS = 30.0
#: Whisper's temperature fallback schedule, used when a request asks for temperature 0.
FALLBACK_TEMPERATURES: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass(frozen=True)
class Audio:
    """Decoded audio: mono float32 samples at 16 kHz.

    Audio too long to keep in memory has no `samples`: it holds its `length` in samples and a way
    to decode it again block by block (`blocks()`), so the engine reads it window by window.
    """

    samples: np.ndarray
    length: int | None = None
    redecode: Callable[[], Iterator[np.ndarray]] | None = None

    @property
    def streamed(self) -> bool:
        return self.redecode is not None

    @property
    def frames(self) -> int:
        return self.length if self.length is not None else len(self.samples)

    @property
    def duration(self) -> float:
        return self.frames / SAMPLE_RATE

    def blocks(self) -> Iterator[np.ndarray]:
        """The samples from the start, in blocks of any size."""
        if self.redecode is None:
            yield self.samples
        else:
            yield from self.redecode()


@dataclass(frozen=True)
class VadSettings:
    """Silero VAD thresholds for one request (OpenAI's `chunking_strategy` server_vad, mapped)."""

    threshold: float = 0.5  # speech probability above which a frame is speech
    speech_pad_ms: int = 400  # padding kept around each speech chunk
    min_silence_ms: int = 2000  # silence that ends a speech chunk


@dataclass(frozen=True)
class TranscriptionOptions:
    task: Task = "transcribe"
    language: str | None = None
    prompt: str | None = None
    temperature: float = 0.0
    word_timestamps: bool = False
    vad_filter: bool = False
    beam_size: int = 5
    #: Detect the language among these only (empty: among all the model knows).
    languages: tuple[str, ...] = ()
    #: Words to favour while decoding (faster-whisper hotwords, openai-whisper prompt).
    keywords: tuple[str, ...] = ()
    #: VAD thresholds when `vad_filter` is on; None means the engine's defaults.
    vad: VadSettings | None = None
    #: Score every decoded text token (one extra encoder pass per 30 s window).
    logprobs: bool = False
    #: The segments are sent as they are decoded: decoding starts with a short first window (up to
    #: a pause after a few seconds), so the first words come soon.
    streamed: bool = False
    #: One live utterance (a Realtime commit): decoded for latency where the engine can
    #: (engine/utterance.py), else as any audio.
    live: bool = False
    #: A live utterance decoded at a pause in speech, a guess the caller may throw away: only the
    #: quick greedy decode, or `SpeculationDeclined` when that cannot give a text Whisper accepts.
    speculative: bool = False

    @property
    def temperatures(self) -> tuple[float, ...]:
        """0 means Whisper's fallback schedule; any other value is used as the only one."""
        return FALLBACK_TEMPERATURES if self.temperature == 0 else (self.temperature,)

    def language_for(self, multilingual: bool) -> str | None:
        """The language to decode in: English for English-only models, else as asked (None = detect)."""
        return self.language if multilingual else "en"

    def named_language(self, multilingual: bool) -> str | None:
        """`language_for`, or the one language `languages[]` allows (None = detect)."""
        language = self.language_for(multilingual)
        if language is None and len(self.languages) == 1:
            return self.languages[0]
        return language


@dataclass(frozen=True)
class ModelSearch:
    """Where locators look for weights, and whether they may download."""

    cache_dir: Path
    model_dir: Path | None = None
    offline: bool = False
    download_timeout: float = 10.0


@dataclass(frozen=True)
class ModelLocation:
    """Where a model's weights are (a CTranslate2 directory or a checkpoint file), and what they are."""

    name: str
    path: Path
    source: str  # "directory", "model_dir", "package", "hf-cache", "download", "checkpoint", ...
    multilingual: bool

    @property
    def weights(self) -> Path:
        return self.path if self.path.is_file() else self.path / "model.bin"

    @property
    def created(self) -> int:
        return int(self.weights.stat().st_mtime)


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    word: str
    probability: float


@dataclass(frozen=True)
class TokenLogprob:
    """One decoded text token and its log-probability under the model."""

    token: str
    logprob: float
    bytes: tuple[int, ...]


@dataclass(frozen=True)
class Segment:
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: tuple[int, ...]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: tuple[Word, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()
    #: Who spoke it, when diarized (`A`, `B`, ... or a known speaker's name).
    speaker: str | None = None
    #: The language it was decoded in (None: the transcription's).
    language: str | None = None


@dataclass(frozen=True)
class TranscriptionInfo:
    """What is known before the first segment: the language and the audio's length."""

    language: str
    language_probability: float
    duration: float


@dataclass(frozen=True)
class Transcript:
    info: TranscriptionInfo
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        return "".join(segment.text for segment in self.segments).strip()


@dataclass(frozen=True)
class ModelDescription:
    """A model as the engine knows it, for listings."""

    name: str
    multilingual: bool
    created: int


class Transcriber(Protocol):
    """A loaded model. Every engine returns one of these; the web layer sees nothing else."""

    name: str
    multilingual: bool

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Start transcribing; segments are decoded lazily as the iterator is consumed."""
        ...


def segment_from(index: int, fields: Mapping[str, Any], language: str | None = None) -> Segment:
    """A segment from an engine's own segment fields (openai-whisper's names, which both engines use)."""
    return Segment(
        id=index,
        seek=int(fields["seek"]),
        start=float(fields["start"]),
        end=float(fields["end"]),
        text=fields["text"],
        tokens=tuple(int(t) for t in fields["tokens"]),
        temperature=float(fields["temperature"] or 0.0),
        avg_logprob=float(fields["avg_logprob"]),
        compression_ratio=float(fields["compression_ratio"]),
        no_speech_prob=float(fields["no_speech_prob"]),
        words=tuple(
            Word(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
            for w in fields.get("words") or ()
        ),
        language=language,
    )


def collect(info: TranscriptionInfo, segments: Iterator[Segment]) -> Transcript:
    return Transcript(info=info, segments=tuple(segments))
