"""Count Whisper tokens with the model's own tokenizer, for honest `usage` numbers."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from pathlib import Path

from whisper_api.engine.types import Segment

#: Whisper's encoder turns every 20 ms of audio into one position (1500 per 30 s window).
AUDIO_TOKENS_PER_SECOND = 50


def audio_tokens(duration: float) -> int:
    """Encoder positions that cover `duration` seconds of audio."""
    return math.ceil(duration * AUDIO_TOKENS_PER_SECOND)


class TokenCounter:
    """Counts text with the tokenizer shipped next to a model's weights (`tokenizer.json`)."""

    def __init__(self, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer  # installed with faster-whisper

        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        eot = self._tokenizer.token_to_id("<|endoftext|>")
        if eot is None:
            raise ValueError(f"{tokenizer_file} is not a Whisper tokenizer (no <|endoftext|>)")
        self.eot = eot

    def count_text(self, text: str) -> int:
        """Tokens Whisper's tokenizer needs for `text` (no special tokens)."""
        if not text:
            return 0
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_decoded(self, segments: Iterable[Segment]) -> int:
        """Text tokens the decoder produced for these segments (timestamps and specials excluded)."""
        return sum(1 for s in segments for token in s.tokens if token < self.eot)


@functools.lru_cache(maxsize=8)
def token_counter(model_path: Path) -> TokenCounter | None:
    """The token counter of the model in `model_path` (loaded once), or None without a tokenizer."""
    tokenizer_file = model_path / "tokenizer.json"
    return TokenCounter(tokenizer_file) if tokenizer_file.is_file() else None
