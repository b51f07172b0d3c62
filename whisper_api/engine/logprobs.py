"""Token log-probabilities of decoded text, scored by the model's decoder (teacher forcing).

Each segment's text tokens are scored against the encoder output of the 30 s window they were
decoded in, after the tokens of the earlier segments of that window, so every figure is the
decoder's own log-probability of the token it emitted in that context. The extra cost is one
encoder pass per window and one decoder pass per segment, paid only when a request asks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from whisper_api.engine.types import Audio, Segment, TokenLogprob

logger = logging.getLogger(__name__)

N_FRAMES = 3000  # mel frames in one 30 s window


def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's printable stand-ins for raw bytes (the GPT-2 table), reversed."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}


_BYTE_DECODER = _byte_decoder()


def token_record(raw: bytes, logprob: float) -> TokenLogprob:
    """OpenAI's `{token, logprob, bytes}`; a token that splits a UTF-8 character shows U+FFFD."""
    return TokenLogprob(token=raw.decode("utf-8", errors="replace"), logprob=logprob, bytes=tuple(raw))


def with_logprobs(
    segments: Iterator[Segment], score: Callable[[Segment], tuple[TokenLogprob, ...]]
) -> Iterator[Segment]:
    """Attach scores lazily; closing this iterator closes the engine's."""
    from dataclasses import replace

    try:
        for segment in segments:
            yield replace(segment, logprobs=score(segment))
    finally:
        close = getattr(segments, "close", None)
        if close is not None:
            close()


class FasterScorer:
    """Scores faster-whisper segments with CTranslate2's `align` (its `text_token_probs`)."""

    def __init__(self, model: Any, audio: Audio, language: str, task: str) -> None:  # noqa: ANN401
        self._model = model
        self._features = model.feature_extractor(audio.samples)
        self._language = language
        self._task = task
        self._tokenizers: dict[str, Any] = {}
        self._seek: int | None = None
        self._encoded: Any = None
        self._context: list[int] = []

    def _tokenizer_for(self, segment: Segment) -> Any:  # noqa: ANN401
        """The tokenizer of the language the segment was decoded in (its window's, when switched)."""
        from faster_whisper.tokenizer import Tokenizer

        code = segment.language or self._language
        if code not in self._tokenizers:
            multilingual = self._model.model.is_multilingual
            self._tokenizers[code] = Tokenizer(
                self._model.hf_tokenizer, multilingual, task=self._task, language=code
            )
        return self._tokenizers[code]

    def __call__(self, segment: Segment) -> tuple[TokenLogprob, ...]:
        from faster_whisper.audio import pad_or_trim

        self._tokenizer = self._tokenizer_for(segment)
        text = [t for t in segment.tokens if t < self._tokenizer.eot]
        if not text:
            return ()
        if segment.seek != self._seek:
            window = pad_or_trim(self._features[:, segment.seek : segment.seek + N_FRAMES])
            self._encoded = self._model.encode(window)
            self._seek, self._context = segment.seek, []
        frames = max(1, min(N_FRAMES, self._features.shape[-1] - segment.seek) // 2)
        start = list(self._tokenizer.sot_sequence) + self._context[-223:]
        self._context += text
        return faster_token_logprobs(self._model, self._encoded, start, text, frames)


def faster_token_logprobs(
    model: Any,  # noqa: ANN401 - faster-whisper's WhisperModel
    encoded: Any,  # noqa: ANN401 - its encoder output (a CTranslate2 StorageView)
    start: list[int],
    text: list[int],
    frames: int,
) -> tuple[TokenLogprob, ...]:
    """The log-probability of each of `text`'s tokens after `start`, by CTranslate2's `align`
    over `frames` encoder frames of speech."""
    if not text:
        return ()
    result = model.model.align(encoded, start, [text], max(1, frames))[0]
    probs = np.asarray(result.text_token_probs[: len(text)], dtype=np.float64)
    logprobs = np.log(np.clip(probs, 1e-30, 1.0))
    hf = model.hf_tokenizer
    return tuple(
        token_record(bytes(_BYTE_DECODER[c] for c in hf.id_to_token(t)), float(lp))
        for t, lp in zip(text, logprobs, strict=False)
    )


class TorchScorer:
    """Scores openai-whisper segments with one teacher-forced decoder pass per segment."""

    def __init__(self, model: Any, audio: Audio, language: str, task: str, lock: Any) -> None:  # noqa: ANN401
        import whisper

        self._model = model
        self._lock = lock
        self._mel = whisper.log_mel_spectrogram(
            audio.samples, model.dims.n_mels, padding=whisper.audio.N_SAMPLES
        )
        self._tokenizer = whisper.tokenizer.get_tokenizer(
            model.is_multilingual, num_languages=model.num_languages, language=language, task=task
        )
        self._seek: int | None = None
        self._features: Any = None
        self._context: list[int] = []

    def __call__(self, segment: Segment) -> tuple[TokenLogprob, ...]:
        import torch
        import whisper

        text = [t for t in segment.tokens if t < self._tokenizer.eot]
        if not text:
            return ()
        with self._lock, torch.no_grad():
            if segment.seek != self._seek:
                window = whisper.pad_or_trim(self._mel[:, segment.seek : segment.seek + N_FRAMES], N_FRAMES)
                window = window.to(self._model.device, dtype=next(self._model.parameters()).dtype)
                self._features = self._model.embed_audio(window[None])
                self._seek, self._context = segment.seek, []
            start = list(self._tokenizer.sot_sequence_including_notimestamps) + self._context[-223:]
            tokens = torch.tensor([start + text], device=self._model.device)
            logits = self._model.logits(tokens, self._features)[0, len(start) - 1 : -1].float()
            scores = torch.log_softmax(logits, dim=-1).gather(1, tokens[0, len(start) :, None])[:, 0].tolist()
        self._context += text
        encoding = self._tokenizer.encoding
        return tuple(
            token_record(encoding.decode_single_token_bytes(t), float(lp))
            for t, lp in zip(text, scores, strict=True)
        )
