"""The faster-whisper (CTranslate2) engine: int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import numpy as np

from whisper_api.engine.languages import pick_language
from whisper_api.engine.loading import ModelLocation
from whisper_api.engine.logprobs import FasterScorer, with_logprobs
from whisper_api.engine.types import (
    SAMPLE_RATE,
    Audio,
    Segment,
    TranscriptionInfo,
    TranscriptionOptions,
    VadSettings,
    Word,
)
from whisper_api.engine.windows import (
    MAX_WINDOW_TOKENS,
    AudioReader,
    WindowPolicy,
    speech_spans,
    transcribe_windowed,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    """Where and how a model runs."""

    device: str  # "cpu" or "cuda"
    index: int
    compute_type: str
    cpu_threads: int
    num_workers: int = 1  # transcriptions run in parallel on this model


def choose_device(
    device: str, compute_type: str, cpu_threads: int, device_index: int = 0, num_workers: int = 1
) -> DeviceChoice:
    """Resolve `auto` and `default` into a concrete device and compute type."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "default":
        compute_type = "float16" if device == "cuda" else "int8"
    return DeviceChoice(device, device_index, compute_type, cpu_threads, max(1, num_workers))


class FasterWhisperTranscriber:
    """A faster-whisper model loaded on one device."""

    engine = "faster-whisper"

    def __init__(
        self, location: ModelLocation, choice: DeviceChoice, windows: WindowPolicy | None = None
    ) -> None:
        from faster_whisper import WhisperModel  # heavy: imported only in the worker

        self.name = location.name
        self.location = location
        self.choice = choice
        self.windows = windows or WindowPolicy()
        self.multilingual = location.multilingual
        self._model = WhisperModel(
            str(location.path),
            device=choice.device,
            device_index=choice.index,
            compute_type=choice.compute_type,
            cpu_threads=choice.cpu_threads,
            num_workers=choice.num_workers,
            local_files_only=True,
        )

    def warm_up(self) -> None:
        """Run one short decode so the first request does not pay for lazy initialisation."""
        silence = Audio(np.zeros(SAMPLE_RATE, dtype=np.float32))
        info, segments = self.transcribe(silence, TranscriptionOptions(beam_size=1))
        for _ in segments:
            pass

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        language = options.language if self.multilingual else "en"
        probability = 1.0
        if language is None and len(options.languages) == 1:
            language = options.languages[0]
        elif language is None:
            # As faster-whisper decides it for a whole file: from the first 30 s, once (among
            # `languages` when the request names some).
            language, probability, candidates = self._model.detect_language(
                AudioReader(audio).read(0.0, 30.0)
            )
            if options.languages:
                language, probability = pick_language(candidates, options.languages)
        record = TranscriptionInfo(
            language=language, language_probability=float(probability), duration=audio.duration
        )

        hotwords = " ".join(options.keywords) or None
        max_new_tokens = self.windows.window_tokens
        if hotwords:
            # Hotwords share the 448-token context with the earlier text: leave them their room.
            hot = len(self._model.hf_tokenizer.encode(" " + hotwords.strip()).ids)
            max_new_tokens = max(1, min(max_new_tokens, MAX_WINDOW_TOKENS - min(hot, 223)))

        def decode(samples: np.ndarray, prompt: str | None) -> Iterator[Segment]:
            segments, _ = self._model.transcribe(
                samples,
                language=language,
                task=options.task,
                beam_size=options.beam_size,
                temperature=list(options.temperatures),
                initial_prompt=prompt or None,
                word_timestamps=options.word_timestamps,
                vad_filter=options.vad_filter,
                vad_parameters=_vad_parameters(options.vad),
                hotwords=hotwords,
                max_new_tokens=max_new_tokens,
            )
            if not options.logprobs:
                return _segments(segments)
            # Scored within the chunk it was decoded in (segment seeks count from the chunk's start).
            scorer = FasterScorer(self._model, Audio(samples), language, options.task)
            return with_logprobs(_segments(segments), scorer)

        return record, transcribe_windowed(audio, decode, speech_spans, self.windows, options.prompt or None)


def _vad_parameters(vad: VadSettings | None) -> dict[str, float] | None:
    if vad is None:
        return None
    return {
        "threshold": vad.threshold,
        "speech_pad_ms": vad.speech_pad_ms,
        "min_silence_duration_ms": vad.min_silence_ms,
    }


def _segments(segments: Generator) -> Iterator[Segment]:
    """Convert lazily; closing this iterator closes faster-whisper's, which stops decoding."""
    try:
        for s in segments:
            yield _segment(s)
    finally:
        segments.close()


def _segment(s) -> Segment:  # noqa: ANN001 - faster_whisper.transcribe.Segment
    return Segment(
        id=int(s.id) - 1,  # faster-whisper counts from 1, OpenAI from 0
        seek=int(s.seek),
        start=float(s.start),
        end=float(s.end),
        text=s.text,
        tokens=tuple(int(t) for t in s.tokens),
        temperature=float(s.temperature if s.temperature is not None else 0.0),
        avg_logprob=float(s.avg_logprob),
        compression_ratio=float(s.compression_ratio),
        no_speech_prob=float(s.no_speech_prob),
        words=tuple(Word(float(w.start), float(w.end), w.word, float(w.probability)) for w in s.words or ()),
    )
