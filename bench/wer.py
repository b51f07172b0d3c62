"""Word error rate with a small normaliser: case, punctuation and hyphens do not count."""

from __future__ import annotations

import re
import unicodedata

import jiwer

_SEPARATORS = re.compile(r"[-/]")
_NOT_WORD = re.compile(r"[^\w\s']")


def normalise(text: str) -> str:
    """Lower case, no punctuation (apostrophes inside words kept), single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _SEPARATORS.sub(" ", text)
    text = _NOT_WORD.sub(" ", text)
    return " ".join(word.strip("'") for word in text.split() if word.strip("'"))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edits (substitutions, deletions, insertions) per reference word, after normalising both."""
    ref = normalise(reference)
    if not ref:
        raise ValueError("the reference text is empty")
    hyp = normalise(hypothesis)
    if not hyp:
        return 1.0  # everything deleted
    return float(jiwer.wer(ref, hyp))
