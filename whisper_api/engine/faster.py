"""The faster-whisper (CTranslate2) engine: int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_api.engine import utterance
from whisper_api.engine.batched import BatchedTranscription, BatchPolicy, pauses_and_speech
from whisper_api.engine.languages import LanguageSwitch, pick_language
from whisper_api.engine.logprobs import FasterScorer, with_logprobs
from whisper_api.engine.transcriber import LoadedModel
from whisper_api.engine.types import (
    Audio,
    ModelLocation,
    Segment,
    TranscriptionInfo,
    TranscriptionOptions,
    VadSettings,
    segment_from,
)
from whisper_api.engine.windows import MAX_WINDOW_TOKENS, AudioReader, EncodeAhead, WindowPolicy

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


class FasterWhisperTranscriber(LoadedModel):
    """A faster-whisper model loaded on one device."""

    engine = "faster-whisper"

    def __init__(
        self,
        location: ModelLocation,
        choice: DeviceChoice,
        windows: WindowPolicy | None = None,
        batch: BatchPolicy | None = None,
    ) -> None:
        from faster_whisper import WhisperModel  # heavy: imported only in the worker

        super().__init__(location, windows)
        self.choice = choice
        self.batch = batch or BatchPolicy(batch_size=1)
        self._model = WhisperModel(
            str(location.path),
            device=choice.device,
            device_index=choice.index,
            compute_type=choice.compute_type,
            cpu_threads=choice.cpu_threads,
            num_workers=choice.num_workers,
            local_files_only=True,
        )

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Batched decoding when the settings ask for it (`batched.py`), else window by window (and
        a live utterance on its own road, `engine/utterance.py`)."""
        if not self.batch.enabled or options.live:
            return super().transcribe(audio, options)
        from whisper_api.engine.faster_batch import FasterBatchDecoder

        language = options.named_language(self.multilingual)
        hotwords = self._hotwords(options.keywords)
        tokens = self._window_tokens(hotwords)
        decoder = FasterBatchDecoder(
            self._model,
            options,
            language,
            hotwords,
            tokens,
            self.batch,
            self.windows.language_per_window,
            groups=min(self.batch.parallel_groups, self.choice.num_workers),
        )

        def sequential(samples: np.ndarray, window_language: str) -> Iterator[Segment]:
            return self.decode(samples, options, window_language, options.prompt or None)

        run = BatchedTranscription(
            audio,
            decoder,
            sequential,
            pauses_and_speech,
            self.batch,
            options.streamed,
            find_short_pauses=lambda samples: pauses_and_speech(samples, SHORT_PAUSE_MS),
        )
        first = run.start()  # the first window's language is the transcript's, as in Whisper
        if first is not None:
            info = TranscriptionInfo(first.language, first.language_probability, audio.duration)
        elif language is not None:
            info = TranscriptionInfo(language, 1.0, audio.duration)
        else:
            info = TranscriptionInfo(*self.detect_language(audio, options.languages), audio.duration)
        return info, run.segments()

    def detect_language(self, audio: Audio, allowed: tuple[str, ...] = ()) -> tuple[str, float]:
        # As faster-whisper decides it for a whole file: from the first 30 s, once (among
        # `allowed` when the request names some).
        language, probability, candidates = self._model.detect_language(AudioReader(audio).read(0.0, 30.0))
        if allowed:
            return pick_language(candidates, allowed)
        return language, float(probability)

    def decode(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        language: str,
        prompt: str | None,
        switch: LanguageSwitch | None = None,
        ahead: EncodeAhead | None = None,
    ) -> Iterator[Segment]:
        encoder = ahead if isinstance(ahead, _EncoderAhead) else _EncoderAhead(self._model)
        segments = self._segments(samples, options, language, prompt, switch, encoder)
        if not options.logprobs:
            return segments
        # Scored within the chunk it was decoded in (segment seeks count from the chunk's start).
        scorer = FasterScorer(self._model, Audio(samples), language, options.task)
        return with_logprobs(segments, scorer)

    def _segments(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        language: str,
        prompt: str | None,
        switch: LanguageSwitch | None,
        encoder: _EncoderAhead,
    ) -> Iterator[Segment]:
        """The chunk's segments; with a switch, a chunk whose first window is in another language
        than the one before is decoded without the earlier text, which would pull it into that one
        (from the same encoder pass)."""
        try:
            yield from self._decode(samples, options, language, prompt, switch, encoder)
        except _OtherLanguageError:
            yield from self._decode(samples, options, language, None, switch, encoder)

    def _decode(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        language: str,
        prompt: str | None,
        switch: LanguageSwitch | None,
        encoder: _EncoderAhead,
    ) -> Iterator[Segment]:
        hotwords = self._hotwords(options.keywords)
        model = _request_view(self._model, encoder, switch, prompted=bool(prompt))
        segments, _ = model.transcribe(
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
            max_new_tokens=self._window_tokens(hotwords),
            # faster-whisper detects each 30 s window's language from the encoder output it
            # decodes anyway: no extra encoder pass; `_request_view` has the switch decide.
            multilingual=switch is not None,
        )
        return _converted(segments, switch)

    def encode_ahead(self) -> EncodeAhead | None:
        return _EncoderAhead(self._model) if self.choice.num_workers > 1 else None

    def decode_utterance(self, samples: np.ndarray, options: TranscriptionOptions) -> utterance.Outcome:
        return utterance.decode_short(self._model, samples, options, self.windows.window_tokens)

    def _hotwords(self, keywords: tuple[str, ...]) -> str | None:
        """The keywords that fit MAX_HOTWORD_TOKENS, in the order given (the rest would overflow the
        448-token context, which faster-whisper refuses with an error)."""
        kept: list[str] = []
        total = 0
        for keyword in keywords:
            total += len(self._model.hf_tokenizer.encode(" " + keyword.strip()).ids)
            if total > MAX_HOTWORD_TOKENS:
                break
            kept.append(keyword.strip())
        return " ".join(kept) or None

    def _window_tokens(self, hotwords: str | None) -> int:
        """The window's token limit; hotwords share the 448-token context, so leave them their room."""
        if not hotwords:
            return self.windows.window_tokens
        hot = len(self._model.hf_tokenizer.encode(" " + hotwords.strip()).ids)
        return max(1, min(self.windows.window_tokens, MAX_WINDOW_TOKENS - min(hot, 223)))


#: Mel frames in a 30 s window.
N_FRAMES = 3000
#: Encoder passes a request keeps: the chunk ahead, the chunk decoding, a window inside it.
HELD_PASSES = 3
#: The shortest pause a streamed request's first window may end in (a fluent reader's breath).
SHORT_PAUSE_MS = 120
#: Hotword tokens kept per request: a quarter of Whisper's context, so text has room after them.
MAX_HOTWORD_TOKENS = 112


def _vad_parameters(vad: VadSettings | None) -> dict[str, float] | None:
    if vad is None:
        return None
    return {
        "threshold": vad.threshold,
        "speech_pad_ms": vad.speech_pad_ms,
        "min_silence_duration_ms": vad.min_silence_ms,
    }


def _converted(segments: Generator, switch: LanguageSwitch | None = None) -> Iterator[Segment]:
    """Convert lazily; closing this iterator closes faster-whisper's, which stops decoding.

    faster-whisper detects a window's language just before decoding it and yields that window's
    segments before it detects the next one's, so the switch's language is each segment's own.
    """
    try:
        for s in segments:
            language = switch.current if switch is not None else None
            yield segment_from(int(s.id) - 1, dataclasses.asdict(s), language)  # counts from 1
    finally:
        segments.close()


class _OtherLanguageError(Exception):
    """A prompted chunk's first window is in another language than the prompt's text."""


class _SteeredDetection:
    """A CTranslate2 Whisper model whose per-window language detection a request's switch decides
    (among the request's allowed languages; an unsure window keeps the language before it)."""

    def __init__(self, model: Any, switch: LanguageSwitch, prompted: bool) -> None:  # noqa: ANN401
        self._model = model
        self._switch = switch
        self._prompted = prompted

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        return getattr(self._model, name)

    def detect_language(self, features: Any) -> list[list[tuple[str, float]]]:  # noqa: ANN401
        before = self._switch.current
        results = self._model.detect_language(features)
        chosen = self._switch.choose((token[2:-2], float(p)) for token, p in results[0])
        if self._prompted and before is not None and chosen != before:
            raise _OtherLanguageError  # before the window is decoded: only its encoder pass is lost
        self._prompted = False  # later windows of the chunk are prompted with this one's text
        return [[(f"<|{chosen}|>", 1.0)]]


def _request_view(
    model: Any,  # noqa: ANN401 - faster_whisper.WhisperModel
    encoder: _EncoderAhead,
    switch: LanguageSwitch | None,
    prompted: bool,
) -> Any:  # noqa: ANN401
    """A per-request view of the loaded model (sharing its weights) that encodes through the
    request's `encoder` and, with a `switch`, detects each window's language through it."""
    view = copy.copy(model)
    view.encode = encoder.encode
    if switch is not None:
        view.model = _SteeredDetection(model.model, switch, prompted)
    return view


class _EncoderAhead:
    """One request's encoder passes: the next chunk's features encoded on a thread of their own
    while this chunk decodes (CTranslate2 runs them on its second worker), and the last pass kept
    for a chunk decoded again from the start (after a language change). A pass is used only for
    the very features faster-whisper asks for; anything else is encoded then and there."""

    def __init__(self, model: Any) -> None:  # noqa: ANN401 - faster_whisper.WhisperModel
        self._model = model
        self._pool: ThreadPoolExecutor | None = None
        self._held: list[tuple[np.ndarray, Future]] = []  # newest first
        self._next: np.ndarray | None = None  # the chunk to encode ahead

    def prefetch(self, samples: np.ndarray) -> None:
        self._next = samples  # started once this chunk is encoded: its decoder leaves a core idle

    def encode(self, features: np.ndarray) -> Any:  # noqa: ANN401 - a CTranslate2 StorageView
        try:
            for held, encoded in self._held:
                if held.shape == features.shape and np.array_equal(held, features):
                    return encoded.result()
            encoded = Future()
            encoded.set_result(self._model.encode(features))
            self._hold(features, encoded)
            return encoded.result()
        finally:
            self._start_next()

    def _start_next(self) -> None:
        from faster_whisper.audio import pad_or_trim

        if self._next is None:
            return
        # As faster-whisper's transcribe() builds a chunk's first window.
        features = self._model.feature_extractor(self._next)
        window = pad_or_trim(features[:, : min(N_FRAMES, features.shape[-1] - 1)])
        self._next = None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="encode-ahead")
        self._hold(window, self._pool.submit(self._model.encode, window))

    def _hold(self, features: np.ndarray, encoded: Future) -> None:
        self._held = [(features, encoded), *self._held[: HELD_PASSES - 1]]

    def close(self) -> None:
        self._held = []
        self._next = None
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
