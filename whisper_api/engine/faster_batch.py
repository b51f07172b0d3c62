"""Several windows through CTranslate2 at once: one encoder call, one decoder call for the batch.

faster-whisper's `WhisperModel` holds the parts (feature extractor, the CTranslate2 model, the
tokenizer, the word aligner); its own `transcribe` decodes one window at a time. Here a batch of
windows is decoded without timestamp tokens (Whisper then writes all a window's speech: with them
it often leaves a window's last sentence for a next window that a batch does not have), then
aligned word by word (one decoder pass over the text): segments are made from the words, split at
sentence ends and pauses, so the batched driver (`batched.py`) sees from the words' times which
speech no text reaches. Each window also says whether it passed Whisper's quality checks.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from whisper_api.engine.batched import BatchPolicy, WindowResult
from whisper_api.engine.languages import LanguageSwitch, pick_language
from whisper_api.engine.types import SAMPLE_RATE, Audio, Segment, TranscriptionOptions, Word
from whisper_api.engine.utterance import average_logprob, compression_ratio, ct2_max_length

logger = logging.getLogger(__name__)

#: Whisper's: a window whose no-speech probability is above this (and text unsure) is silence.
NO_SPEECH_THRESHOLD = 0.6
#: Whisper's punctuation merged into the neighbouring word.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
#: A segment ends after a word ending a sentence, before a pause this long, or once it is this long
#: at a word ending a clause.
SENTENCE_ENDS = ".?!。？！"
CLAUSE_ENDS = ",;:，、；："
SEGMENT_PAUSE_SECONDS = 1.0
CLAUSE_SECONDS = 8.0
N_FRAMES = 3000  # mel frames in a 30 s window
FRAMES_PER_SECOND = 100


class FasterBatchDecoder:
    """Decodes batches of windows for one request (its options, language and keywords)."""

    def __init__(
        self,
        model: Any,  # noqa: ANN401 - faster_whisper.WhisperModel, imported only in the worker
        options: TranscriptionOptions,
        language: str | None,
        hotwords: str | None,
        max_new_tokens: int,
        policy: BatchPolicy,
        per_window: bool = True,
        groups: int = 1,
    ) -> None:
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model = model
        self.options = options
        self.language = language  # None: detected, each window's own (or the first's)
        self.per_window = per_window
        self.groups = groups  # a batch is split into this many groups decoded side by side
        self.switch: LanguageSwitch | None = None  # when detected: the language window by window
        self.hotwords = hotwords
        self.max_new_tokens = max_new_tokens
        self.policy = policy
        self._tokenizers: dict[str, Any] = {}
        self._suppress = get_suppressed_tokens(self._tokenizer(language or "en"), [-1])

    def _tokenizer(self, language: str) -> Any:  # noqa: ANN401
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self.model.hf_tokenizer,
                self.model.model.is_multilingual,
                task=self.options.task,
                language=language,
            )
        return self._tokenizers[language]

    def __call__(self, windows: list[np.ndarray]) -> list[WindowResult]:
        groups = _groups(windows, self.groups)
        if len(groups) == 1:
            encoded = self._encode(windows)
            return self._finish(windows, encoded, self._languages(encoded, len(windows)))
        # CTranslate2's decoder runs a batch on one core: split across its workers, the groups'
        # decoders run side by side (their languages are chosen in order, between the two steps).
        with ThreadPoolExecutor(len(groups), thread_name_prefix="batch-group") as pool:
            encoded = list(pool.map(self._encode, groups))
            languages = [self._languages(e, len(g)) for g, e in zip(groups, encoded, strict=True)]
            decoded = pool.map(self._finish, groups, encoded, languages)
            return [result for part in decoded for result in part]

    def _encode(self, windows: list[np.ndarray]) -> Any:  # noqa: ANN401 - a CTranslate2 StorageView
        from faster_whisper.audio import pad_or_trim

        features = np.stack([pad_or_trim(self.model.feature_extractor(w), N_FRAMES) for w in windows])
        return self.model.encode(features)

    def _finish(
        self,
        windows: list[np.ndarray],
        encoded: Any,  # noqa: ANN401
        languages: list[tuple[str, float]],
    ) -> list[WindowResult]:
        """Decode encoded windows in their languages, align the words, build the segments."""
        prompts = [self._prompt(language) for language, _ in languages]
        temperature = self.options.temperatures[0]
        sampling = (
            {"beam_size": self.options.beam_size}
            if temperature == 0
            else {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
        )
        results = self.model.model.generate(
            encoded,
            prompts,
            max_length=ct2_max_length(self.max_new_tokens),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
            **sampling,
        )
        # The aligner splits words by one tokenizer's rules (they differ only for languages
        # written without spaces), and reads the language from its start sequence.
        tokenizer = self._tokenizer(languages[0][0])
        texts = [[t for t in r.sequences_ids[0] if t < tokenizer.eot] for r in results]
        frames = [min(N_FRAMES, -(-len(w) * FRAMES_PER_SECOND // SAMPLE_RATE)) for w in windows]
        aligned = self.model.find_alignment(tokenizer, texts, encoded, frames)
        return [
            self._window(*item, temperature)
            for item in zip(windows, results, languages, aligned, strict=True)
        ]

    def _languages(self, encoded: Any, count: int) -> list[tuple[str, float]]:  # noqa: ANN401
        if self.language is not None:
            return [(self.language, 1.0)] * count
        chosen = []
        for ranked in self.model.model.detect_language(encoded):
            probabilities = [(token[2:-2], p) for token, p in ranked]
            top, probability = pick_language(probabilities, self.options.languages)
            if self.switch is None:  # the first window's language is the transcript's
                self.switch = LanguageSwitch(top, self.options.languages)
            language = self.switch.choose(probabilities) if self.per_window else self.switch.current
            chosen.append((language, probability))
        if not self.per_window and self.switch is not None:
            self.language = self.switch.current  # the later batches skip the detection
        logger.debug("window languages: %s", chosen)
        return chosen

    def _prompt(self, language: str) -> list[int]:
        tokenizer = self._tokenizer(language)
        previous = tokenizer.encode(" " + self.options.prompt.strip()) if self.options.prompt else []
        return self.model.get_prompt(
            tokenizer, previous_tokens=previous, without_timestamps=True, hotwords=self.hotwords
        )

    def _window(
        self,
        samples: np.ndarray,
        result: Any,  # noqa: ANN401
        language: tuple[str, float],
        words: list[dict[str, Any]],
        temperature: float,
    ) -> WindowResult:
        """One window's segments (times from its start) and whether they pass Whisper's checks."""
        tokenizer = self._tokenizer(language[0])
        tokens = list(result.sequences_ids[0])
        avg_logprob = average_logprob(result.scores[0], len(tokens))
        text = tokenizer.decode(tokens)
        compression = compression_ratio(text)
        silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and avg_logprob < self.policy.min_avg_logprob
        sure = silent or (
            avg_logprob >= self.policy.min_avg_logprob
            and compression <= self.policy.max_compression_ratio
            and len(tokens) < self.max_new_tokens
        )
        fields = {
            "temperature": temperature,
            "avg_logprob": avg_logprob,
            "compression_ratio": compression,
            "no_speech_prob": result.no_speech_prob,
        }
        segments: tuple[Segment, ...] = ()
        if not silent:
            seconds = len(samples) / SAMPLE_RATE
            segments = tuple(
                self._segment(group, fields, language[0]) for group in _sentences(_timed(words, seconds))
            )
        if self.options.logprobs and segments:
            scorer = _scorer(self.model, samples, language[0], self.options.task)
            segments = tuple(dataclasses.replace(s, logprobs=scorer(s)) for s in segments)
        return WindowResult(segments, sure, language[0], float(language[1]))

    def _segment(self, words: list[dict[str, Any]], fields: dict[str, float], language: str) -> Segment:
        return Segment(
            id=0,
            seek=0,
            start=words[0]["start"],
            end=words[-1]["end"],
            text="".join(w["word"] for w in words),
            tokens=tuple(t for w in words for t in w["tokens"]),
            temperature=float(fields["temperature"]),
            avg_logprob=float(fields["avg_logprob"]),
            compression_ratio=float(fields["compression_ratio"]),
            no_speech_prob=float(fields["no_speech_prob"]),
            words=tuple(Word(w["start"], w["end"], w["word"], w["probability"]) for w in words)
            if self.options.word_timestamps
            else (),
            language=language,
        )


def _groups(windows: list[np.ndarray], count: int) -> list[list[np.ndarray]]:
    """The windows in at most `count` groups of consecutive windows, as even as can be."""
    count = max(1, min(count, len(windows)))
    size = -(-len(windows) // count)
    return [windows[i : i + size] for i in range(0, len(windows), size)]


def _timed(words: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """The aligned words inside the window, punctuation merged, none stretched over a pause.

    The aligner spreads the last words over whatever audio follows them, which would hide speech
    the decoder left out; a word is kept to three times the median word's length (at least 1 s).
    """
    from faster_whisper.transcribe import merge_punctuations

    merge_punctuations(words, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
    words = [w for w in words if w["word"]]
    if not words:
        return []
    lengths = [w["end"] - w["start"] for w in words if w["end"] > w["start"]]
    longest = max(1.0, 3 * statistics.median(lengths)) if lengths else 1.0
    timed = []
    for w in words:
        start = min(float(w["start"]), seconds)
        end = min(float(w["end"]), start + longest, seconds)
        timed.append(
            {**w, "start": round(start, 2), "end": round(end, 2), "probability": float(w["probability"])}
        )
    return timed


def _sentences(words: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Words grouped into segments: a group ends after a sentence, before a pause, or after a
    clause once it is long."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    for i, word in enumerate(words):
        current.append(word)
        following = words[i + 1] if i + 1 < len(words) else None
        if (
            following is None
            or word["word"].strip()[-1:] in SENTENCE_ENDS
            or (
                word["word"].strip()[-1:] in CLAUSE_ENDS
                and word["end"] - current[0]["start"] >= CLAUSE_SECONDS
            )
            or following["start"] - word["end"] >= SEGMENT_PAUSE_SECONDS
        ):
            groups.append(current)
            current = []
    return groups


def _scorer(model: Any, samples: np.ndarray, language: str, task: str) -> Any:  # noqa: ANN401
    from whisper_api.engine.logprobs import FasterScorer

    return FasterScorer(model, Audio(samples), language, task)
