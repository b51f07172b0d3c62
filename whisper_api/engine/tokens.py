"""Count Whisper tokens with the model's own tokenizer, for honest `usage` numbers."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from whisper_api.engine.types import Segment

#: Whisper's encoder turns every 20 ms of audio into one position (1500 per 30 s window).
AUDIO_TOKENS_PER_SECOND = 50


def audio_tokens(duration: float) -> int:
    """Encoder positions that cover `duration` seconds of audio."""
    return math.ceil(duration * AUDIO_TOKENS_PER_SECOND)


class TokenCounter:
    """Counts text with an engine's tokenizer; `encode` gives the ids of a text without specials."""

    def __init__(self, encode: Callable[[str], list[int]], eot: int) -> None:
        self._encode = encode
        self.eot = eot

    def count_text(self, text: str) -> int:
        """Tokens Whisper's tokenizer needs for `text` (no special tokens)."""
        return len(self._encode(text)) if text else 0

    def count_decoded(self, segments: Iterable[Segment]) -> int:
        """Text tokens the decoder produced for these segments (timestamps and specials excluded)."""
        return sum(1 for s in segments for token in s.tokens if token < self.eot)


@functools.lru_cache(maxsize=8)
def ct2_token_counter(model_path: Path) -> TokenCounter | None:
    """The counter of the CTranslate2 model in `model_path` (its `tokenizer.json`), or None without one."""
    tokenizer_file = model_path / "tokenizer.json"
    if not tokenizer_file.is_file():
        return None
    from tokenizers import Tokenizer  # installed with faster-whisper

    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    eot = tokenizer.token_to_id("<|endoftext|>")
    if eot is None:
        raise ValueError(f"{tokenizer_file} is not a Whisper tokenizer (no <|endoftext|>)")
    return TokenCounter(lambda text: tokenizer.encode(text, add_special_tokens=False).ids, eot)


@functools.lru_cache(maxsize=4)
def whisper_token_counter(multilingual: bool, num_languages: int) -> TokenCounter:
    """The counter of an openai-whisper model: its own tiktoken vocabulary (read once, cached)."""
    from whisper.tokenizer import get_tokenizer

    with warnings.catch_warnings():  # openai-whisper leaves its vocabulary file to the GC
        warnings.simplefilter("ignore", ResourceWarning)
        tokenizer = get_tokenizer(multilingual, num_languages=num_languages)
    return TokenCounter(tokenizer.encoding.encode, tokenizer.eot)
