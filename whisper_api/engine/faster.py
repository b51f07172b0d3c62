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
from whisper_api.engine.features import PiecewiseFeatures
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
from whisper_api.engine.vad import bound_vad_batches
from whisper_api.engine.windows import (
    MAX_WINDOW_TOKENS,
    SHORT_PAUSE_MS,
    AudioReader,
    EncodeAhead,
    WindowPolicy,
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
        if options.vad_filter:
            bound_vad_batches()  # faster-whisper runs Silero on the whole chunk at once
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

    def encode_ahead(self, options: TranscriptionOptions) -> EncodeAhead | None:
        # A streamed request's short first chunk is encoded at its own length (engine/utterance.py):
        # its first words come out in half the time.
        return _EncoderAhead(
            self._model, short_first=options.streamed, runs_ahead=self.choice.num_workers > 1
        )

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


#: Encoder passes a request keeps: the chunk ahead, the chunk decoding, a window inside it.
HELD_PASSES = 3
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


class _RequestModel:
    """The CTranslate2 Whisper model as one request uses it: with a switch, each window's language
    detection is the switch's choice (among the request's allowed languages; an unsure window keeps
    the language before it); a greedy decode that loops after earlier text is decoded again without
    that text before faster-whisper falls back to sampling."""

    def __init__(self, model: Any, tokenizer: Any, switch: LanguageSwitch | None, prompted: bool) -> None:  # noqa: ANN401
        self._model = model
        self._tokenizer = tokenizer  # faster-whisper's Hugging Face tokenizer
        self._switch = switch
        self._prompted = prompted

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401
        return getattr(self._model, name)

    def detect_language(self, features: Any) -> list[list[tuple[str, float]]]:  # noqa: ANN401
        if self._switch is None:
            return self._model.detect_language(features)
        before = self._switch.current
        results = self._model.detect_language(features)
        chosen = self._switch.choose((token[2:-2], float(p)) for token, p in results[0])
        if self._prompted and before is not None and chosen != before:
            raise _OtherLanguageError  # before the window is decoded: only its encoder pass is lost
        self._prompted = False  # later windows of the chunk are prompted with this one's text
        return [[(f"<|{chosen}|>", 1.0)]]

    def generate(self, features: Any, prompts: list[list[int]], **options: Any) -> list[Any]:  # noqa: ANN401
        """Whisper's own decode, with the token budget faster-whisper means (`ct2_max_length`); a
        greedy one conditioned on earlier text that fails Whisper's checks
        (the decoder copying that text or repeating itself, or unsure) is decoded again, greedily,
        from the window's start sequence alone (kept if it passes them). Sampling at rising
        temperatures, Whisper's remedy, is random and on this CPU costs five decodes a step
        (faster-whisper samples `best_of` 5) up to the token limit each."""
        prompt = prompts[0]
        budget = options.get("max_length", utterance.CONTEXT_TOKENS) - len(prompt)  # its new tokens
        options = {**options, "max_length": utterance.ct2_max_length(budget)}
        results = self._model.generate(features, prompts, **options)
        sot = self._tokenizer.token_to_id("<|startoftranscript|>")
        if "sampling_temperature" in options or len(prompts) != 1 or prompt[0] == sot or sot not in prompt:
            return results
        if self._passes(results[0]):
            return results
        alone = prompt[prompt.index(sot) :]
        again = self._model.generate(features, [alone], **options)
        logger.info("a window that failed Whisper's checks after earlier text was decoded again without it")
        return again if self._passes(again[0]) else results

    def _passes(self, result: Any) -> bool:  # noqa: ANN401
        """Whisper's checks before its temperature fallback (utterance.py's thresholds): not
        repetitive, not unsure (a no-speech window, which Whisper skips, passes)."""
        end = self._tokenizer.token_to_id("<|endoftext|>")
        tokens = result.sequences_ids[0]
        text = self._tokenizer.decode([t for t in tokens if t < end]).strip()
        if utterance.compression_ratio(text) > utterance.COMPRESSION_RATIO_LIMIT:
            return False
        average = utterance.average_logprob(result.scores[0], len(tokens))  # as faster-whisper reads it
        return average >= utterance.LOGPROB_LIMIT or result.no_speech_prob > utterance.NO_SPEECH_LIMIT


def _request_view(
    model: Any,  # noqa: ANN401 - faster_whisper.WhisperModel
    encoder: _EncoderAhead,
    switch: LanguageSwitch | None,
    prompted: bool,
) -> Any:  # noqa: ANN401
    """A per-request view of the loaded model (sharing its weights) that computes features and
    encodes through the request's `encoder` and decodes through `_RequestModel` (with a `switch`:
    each window in its own language)."""
    view = copy.copy(model)
    view.feature_extractor = encoder.features
    view.encode = encoder.encode
    view.model = _RequestModel(model.model, model.hf_tokenizer, switch, prompted)
    return view


class _EncoderAhead:
    """One request's encoder passes: the next chunk's features encoded on a thread of their own
    while this chunk decodes (CTranslate2 runs them on its second worker), and the last pass kept
    for a chunk decoded again from the start (after a language change). A pass is used only for
    the very features faster-whisper asks for; anything else is encoded then and there."""

    def __init__(self, model: Any, short_first: bool = False, runs_ahead: bool = True) -> None:  # noqa: ANN401
        self._model = model  # faster_whisper.WhisperModel
        self.features = PiecewiseFeatures(model.feature_extractor)  # the chunk ahead's, kept for its decode
        self._short_first = short_first  # the first pass, when short, is encoded at its own length
        self._runs_ahead = runs_ahead  # False: one CTranslate2 worker, nothing runs beside it
        self._pool: ThreadPoolExecutor | None = None
        self._held: list[tuple[np.ndarray, Future]] = []  # newest first
        self._next: np.ndarray | None = None  # the chunk to encode ahead

    def prefetch(self, samples: np.ndarray) -> None:
        if self._runs_ahead:
            self._next = samples  # started once this chunk is encoded: its decoder leaves a core idle

    def encode(self, features: np.ndarray) -> Any:  # noqa: ANN401 - a CTranslate2 StorageView
        try:
            for held, encoded in self._held:
                if held.shape == features.shape and np.array_equal(held, features):
                    return encoded.result()
            encoded = Future()
            encoded.set_result(self._model.encode(self._shortened(features)))
            self._hold(features, encoded)
            return encoded.result()
        finally:
            self._start_next()

    def _shortened(self, features: np.ndarray) -> np.ndarray:
        """The first pass's features without the padding past `short_window_frames` (zero columns:
        faster-whisper pads a short window's mel with zeros)."""
        first, self._short_first = self._short_first, False
        if not first or features.ndim != 2:
            return features
        written = np.flatnonzero(np.any(features != 0, axis=0))
        content = int(written[-1]) + 1 if len(written) else 0
        frames = utterance.short_window_frames(content)
        return features if frames >= features.shape[-1] else np.ascontiguousarray(features[:, :frames])

    def _start_next(self) -> None:
        from faster_whisper.audio import pad_or_trim

        if self._next is None:
            return
        # As faster-whisper's transcribe() builds a chunk's first window.
        features = self.features(self._next)
        window = pad_or_trim(features[:, : min(self.features.nb_max_frames, features.shape[-1] - 1)])
        self._next = None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="encode-ahead")
        self._hold(window, self._pool.submit(self._model.encode, window))

    def _hold(self, features: np.ndarray, encoded: Future) -> None:
        self._held = [(features, encoded), *self._held[: HELD_PASSES - 1]]

    def close(self) -> None:
        self._held = []
        self._next = None
        self.features.forget()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
