"""Text helpers for accuracy checks: normalise like a person reads, count word errors."""

from __future__ import annotations

import re

JFK_REFERENCE = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


#: Whisper writes small numbers as digits or as words, either way from the same speech.
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen"
    " sixteen seventeen eighteen nineteen twenty"
)
_NUMBERS = dict(enumerate(_NUMBER_WORDS.split()))


def normalise(text: str) -> list[str]:
    """Lower-case words without punctuation; a number up to twenty as its word."""
    words = re.findall(r"[\w']+", text.lower())
    return [_NUMBERS.get(int(w), w) if w.isdigit() else w for w in words]


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance (substitutions + insertions + deletions)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        current = [i]
        for j, h in enumerate(hyp, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]
