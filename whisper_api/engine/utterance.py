"""One short live utterance decoded for latency on CTranslate2: encoded at its own length.

Whisper's encoder normally sees a full 30 s window (3000 mel frames), padded with silence; on this
machine that one pass costs about a second on `base`, whatever the utterance's length, and
detecting the language first costs a second pass. A Realtime utterance is a few seconds long, so
here the encoder sees the utterance and 3 s of padding, at least 10 s in all (CTranslate2 accepts
fewer frames: 6 s cost 0.07 s and 10 s about 0.15 s instead of 1.5 s for 30 s, measured under
load), the language is read from that same encoder output, and the text is decoded greedily
without timestamps, as one segment.

With too little padding the decoder no longer finds the end of the speech and repeats itself (1 s
of padding looped on 2 of 11 test utterances; 3 s on none, with the same words as the full window).
So the greedy result is checked as Whisper checks a window before its temperature fallback
(compression ratio, average log-probability), and for repeated words, which the compression
ratio of a short text misses; a token budget bounds what a loop costs. A result that
fails goes back to the full-window decode (with the fallback), which the caller runs in the
language found here. Sampling at higher temperatures on the short window was tried and dropped:
on a two-word utterance it picked repeated words ("Ask not! Ask not! Ask not!") that the
compression ratio of so short a text does not catch.
"""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_api.engine.logprobs import faster_token_logprobs
from whisper_api.engine.types import (
    SAMPLE_RATE,
    Segment,
    TokenLogprob,
    TranscriptionInfo,
    TranscriptionOptions,
)

#: Padding (mel frames, 10 ms each) after the utterance; less makes the decoder loop.
PAD_FRAMES = 300
#: The shortest window encoded: below 10 s the decoder grows unsure of short utterances (a 1.8 s
#: "Ask not!" scored an average log-probability of -1.0 in a 4.8 s window, -0.58 in 8.8 s,
#: -0.44 in the full 30 s), and an unsure text costs the full-window decode.
MIN_FRAMES = 1000
#: Longest utterance decoded this way: what fits one window beside its padding.
MAX_SECONDS = 27.0
#: Whisper's checks of a decoded window (the same thresholds as its temperature fallback).
COMPRESSION_RATIO_LIMIT = 2.4
LOGPROB_LIMIT = -1.0
NO_SPEECH_LIMIT = 0.6
#: A language detected this surely here is kept when the full window decodes again.
SURE_LANGUAGE = 0.5
#: Token budget (new tokens), far above any speech rate: it bounds what a loop costs, and a text
#: that reaches it may be cut short, so it is not accepted.
TOKENS_PER_SECOND = 24
MIN_TOKENS = 48
_MAX_PROMPT_TOKENS = 223  # Whisper keeps this much earlier text in a prompt
CONTEXT_TOKENS = 448  # Whisper's text context, in tokens


class SpeculationDeclined(Exception):  # noqa: N818 - not an error: a guess not worth making
    """A speculative decode (`TranscriptionOptions.speculative`) found no quick answer."""


@dataclass(frozen=True)
class Outcome:
    """What the short decode made of the utterance."""

    info: TranscriptionInfo
    segment: Segment | None  # the text, when accepted
    accepted: bool  # False: the text failed Whisper's checks; decode the full window instead


def fits(duration: float, options: TranscriptionOptions) -> bool:
    """Whether a live utterance can take the short road (what it does not do: word timestamps,
    hotwords, a choice among some languages, temperatures other than greedy's 0)."""
    return (
        0 < duration <= MAX_SECONDS
        and not options.word_timestamps
        and not options.keywords
        and not options.languages
        and options.temperatures[0] == 0
    )


def ct2_max_length(new_tokens: int) -> int:
    """CTranslate2's `max_length` for a decode of at most `new_tokens` tokens. CTranslate2 4.8's
    Whisper generates at most max_length / 2 new tokens, whatever the prompt's length (measured:
    20 -> 10, 100 -> 50, 448 -> 224; a 49-token prompt with 100 -> 50): faster-whisper's own
    `len(prompt) + max_new_tokens` cut a fresh window at 111 tokens, which dense speech fills
    in 30 s. 448 is Whisper's context."""
    return min(CONTEXT_TOKENS, 2 * new_tokens)


def short_window_frames(content: int) -> int:
    """The mel frames a short stretch of `content` frames is encoded in: itself and its padding."""
    return min(3000, max(MIN_FRAMES, content + PAD_FRAMES))


def decode_short(model: Any, samples: np.ndarray, options: TranscriptionOptions, max_tokens: int) -> Outcome:  # noqa: ANN401
    """Encode `samples` with its padding, detect the language there if needed, decode greedily.

    `model` is faster-whisper's `WhisperModel` (its feature extractor, tokenizer and CTranslate2
    model); thread-safe as CTranslate2 is.
    """
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_ctranslate2_storage

    features = model.feature_extractor(samples)
    content = min(features.shape[-1], int(MAX_SECONDS * 100))
    frames = short_window_frames(content)
    window = np.zeros((features.shape[0], frames), dtype=np.float32)
    window[:, :content] = features[:, :content]
    ct2 = model.model
    encoded = ct2.encode(get_ctranslate2_storage(window[None]))

    language, probability = options.language_for(ct2.is_multilingual), 1.0
    if language is None:
        token, probability = ct2.detect_language(encoded)[0][0]
        language = token[2:-2]
    duration = len(samples) / SAMPLE_RATE
    info = TranscriptionInfo(language, float(probability), duration)

    tokenizer = Tokenizer(model.hf_tokenizer, ct2.is_multilingual, task=options.task, language=language)
    prompt: list[int] = []
    if options.prompt:
        prompt = [tokenizer.sot_prev, *tokenizer.encode(" " + options.prompt.strip())[-_MAX_PROMPT_TOKENS:]]
    start = [*prompt, *tokenizer.sot_sequence, tokenizer.no_timestamps]
    budget = min(max_tokens, max(MIN_TOKENS, int(duration * TOKENS_PER_SECOND)))

    attempt = _greedy(ct2, tokenizer, encoded, start, budget, options.beam_size)
    if attempt.silent or not attempt.passes or not attempt.text.strip():
        # The short window makes Whisper's no-speech probability higher than the full window's
        # (0.54 against 0.30 for a 1.8 s "Ask not!" on tiny.en): its verdict of silence is not
        # trusted either, but checked on the full window (the server's VAD heard speech there).
        return Outcome(info, None, accepted=False)
    logprobs: tuple[TokenLogprob, ...] = ()
    if options.logprobs:
        logprobs = faster_token_logprobs(model, encoded, start, list(attempt.tokens), content // 2)
    segment = Segment(
        id=0,
        seek=0,
        start=0.0,
        end=round(duration, 3),
        text=attempt.text,
        tokens=attempt.tokens,
        temperature=0.0,
        avg_logprob=attempt.avg_logprob,
        compression_ratio=attempt.compression_ratio,
        no_speech_prob=attempt.no_speech_prob,
        logprobs=logprobs,
        language=language,
    )
    return Outcome(info, segment, accepted=True)


@dataclass(frozen=True)
class _Try:
    """One greedy decode, and Whisper's verdicts on it."""

    text: str
    tokens: tuple[int, ...]
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    ran_on: bool  # it repeated itself, or reached the token budget

    @property
    def silent(self) -> bool:
        """Whisper's no-speech verdict."""
        return self.no_speech_prob > NO_SPEECH_LIMIT and self.avg_logprob < LOGPROB_LIMIT

    @property
    def passes(self) -> bool:
        return not self.ran_on and self.avg_logprob >= LOGPROB_LIMIT


def _greedy(
    ct2: Any,  # noqa: ANN401 - ctranslate2.models.Whisper
    tokenizer: Any,  # noqa: ANN401 - faster_whisper.tokenizer.Tokenizer
    encoded: Any,  # noqa: ANN401 - the encoder output
    start: list[int],
    budget: int,
    beam_size: int,
) -> _Try:
    from faster_whisper.transcribe import get_suppressed_tokens

    result = ct2.generate(
        encoded,
        [start],
        beam_size=max(1, beam_size),
        max_length=ct2_max_length(budget),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])),
    )[0]
    tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
    text = tokenizer.decode(tokens)
    avg_logprob = average_logprob(result.scores[0], len(tokens))
    ratio = compression_ratio(text)
    return _Try(
        text=text,
        tokens=tuple(tokens),
        avg_logprob=avg_logprob,
        compression_ratio=ratio,
        no_speech_prob=float(result.no_speech_prob),
        ran_on=ratio > COMPRESSION_RATIO_LIMIT
        or _repeats(tokens)
        or len(tokens) >= min(budget, CONTEXT_TOKENS // 2) - 1,
    )


def _repeats(tokens: list[int]) -> bool:
    """Whether the text says the same three tokens over and over, as a decoder loop does: on a few
    seconds of speech the compression ratio misses it (" It's not. It's not. It's not. It's not"
    compresses to 1.7, "And so my fellow Americans" three times to 2.39)."""
    counts = Counter(zip(tokens, tokens[1:], tokens[2:], strict=False))
    return bool(counts) and max(counts.values()) >= max(3, len(tokens) // 16)


def average_logprob(score: float, tokens: int) -> float:
    """Whisper's average log-probability of `tokens` decoded tokens from CTranslate2's score (the
    log-probability divided by the length): Whisper's average counts the end-of-text token too."""
    return float(score) * tokens / (tokens + 1)


def compression_ratio(text: str) -> float:
    """Whisper's measure of repetition: text length over its zlib-compressed length."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0
