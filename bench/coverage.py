"""Coverage of a transcript against the audio's speech: no passage dropped, none repeated, none invented.

Word error rate over a whole long file hides the failures that matter most on long audio: a
passage skipped when the decoder jumps a window, the same passage written twice, or text invented
over silence. Every long clip is built from passages whose place in the file is known, so each can
be checked on its own, from the segments' times:

- a passage with a reference text is *dropped* when less than `MIN_RECALL` of its words appear in
  the segments around it; a passage without one (speech in another language) when fewer than
  `MIN_WORDS_PER_SECOND` words were written over it;
- a passage is *repeated* when its own phrases (word 4-grams) appear twice in the segments that lie
  inside it (a segment longer than `SPREAD_SECONDS`, which Whisper writes over several passages at
  times, counts word by word, its words spread evenly over its time);
- text is *invented* when a segment lies inside silence, away from every passage.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import jiwer

from bench.wer import normalise

#: Share of a passage's reference words that must appear near it (a few misheard words are fine).
MIN_RECALL = 0.6
#: Words per second a passage without reference must yield (speech runs at 2-3 words a second).
MIN_WORDS_PER_SECOND = 1.0
#: Share of a passage's 4-grams seen twice inside it that marks it as written twice.
REPEAT_SHARE = 0.25
#: Seconds a segment may reach over a passage's edge (timestamps are not exact).
SLACK = 1.5
NGRAM = 4


@dataclass(frozen=True)
class Passage:
    """A stretch of speech in a clip; `text` None when it has no reference (e.g. another language)."""

    start: float
    end: float
    text: str | None = None


@dataclass(frozen=True)
class PassageCoverage:
    passage: Passage
    #: share of the reference words found (None without reference)
    recall: float | None
    words: int
    dropped: bool
    repeated: bool


@dataclass(frozen=True)
class Coverage:
    passages: tuple[PassageCoverage, ...]
    #: segments that lie in silence, away from every passage
    invented: tuple[tuple[float, float, str], ...]

    @property
    def dropped(self) -> list[PassageCoverage]:
        return [p for p in self.passages if p.dropped]

    @property
    def repeated(self) -> list[PassageCoverage]:
        return [p for p in self.passages if p.repeated]

    @property
    def ok(self) -> bool:
        return not (self.dropped or self.repeated or self.invented)

    def summary(self) -> dict[str, object]:
        """JSON-ready figures for the benchmark's report."""
        recalls = [p.recall for p in self.passages if p.recall is not None]
        return {
            "passages": len(self.passages),
            "dropped": [round(p.passage.start, 1) for p in self.dropped],
            "repeated": [round(p.passage.start, 1) for p in self.repeated],
            "invented": [round(start, 1) for start, _, _ in self.invented],
            "min_recall": min(recalls) if recalls else None,
            "ok": self.ok,
        }

    def describe(self) -> str:
        """One line for a test failure or a log: what went wrong where."""
        parts = [f"dropped at {p.passage.start:.1f}s (recall {p.recall})" for p in self.dropped]
        parts += [f"repeated at {p.passage.start:.1f}s" for p in self.repeated]
        parts += [f"invented at {start:.1f}s" for start, _, _ in self.invented]
        return "; ".join(parts) or "complete"


def check_coverage(
    passages: Sequence[Passage], segments: Iterable[tuple[float, float, str]], duration: float
) -> Coverage:
    """Check `segments` (start, end, text) against the passages the audio is known to contain."""
    segments = [(float(s), float(e), t) for s, e, t in segments]
    pieces = _spread(segments)
    results = []
    for passage in passages:
        low, high = passage.start - SLACK, passage.end + SLACK
        near = _text(seg for seg in segments if _overlaps(seg, low, high))
        inside = _text(seg for seg in pieces if low <= _middle(seg) <= high)
        words = len(normalise(inside).split())
        if passage.text is None:
            dropped = words < MIN_WORDS_PER_SECOND * (passage.end - passage.start)
            results.append(PassageCoverage(passage, None, words, dropped, False))
            continue
        recall = _recall(passage.text, near)
        repeated = _repeated_share(passage.text, inside) >= REPEAT_SHARE
        results.append(PassageCoverage(passage, recall, words, recall < MIN_RECALL, repeated))
    invented = tuple(seg for seg in segments if _in_silence(seg, passages, duration) and normalise(seg[2]))
    return Coverage(tuple(results), invented)


#: Segments longer than this are counted word by word for what lies inside a passage.
SPREAD_SECONDS = 10.0


def _spread(segments: Sequence[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Long segments as one piece per word, each at its share of the segment's time."""
    pieces: list[tuple[float, float, str]] = []
    for start, end, text in segments:
        words = text.split()
        if end - start <= SPREAD_SECONDS or len(words) < 2:
            pieces.append((start, end, text))
            continue
        step = (end - start) / len(words)
        pieces += [(start + i * step, start + (i + 1) * step, w) for i, w in enumerate(words)]
    return pieces


def _text(segments: Iterable[tuple[float, float, str]]) -> str:
    return " ".join(text for _, _, text in segments)


def _middle(segment: tuple[float, float, str]) -> float:
    return (segment[0] + segment[1]) / 2


def _overlaps(segment: tuple[float, float, str], start: float, end: float) -> bool:
    return segment[0] < end and segment[1] > start


def _recall(reference: str, hypothesis: str) -> float:
    ref = normalise(reference)
    hyp = normalise(hypothesis)
    if not hyp:
        return 0.0
    out = jiwer.process_words(ref, hyp)
    return out.hits / len(ref.split())


def _ngrams(words: list[str]) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + NGRAM]) for i in range(len(words) - NGRAM + 1)]


def _repeated_share(reference: str, hypothesis: str) -> float:
    """Share of the reference's 4-grams that the hypothesis contains more than once."""
    wanted = set(_ngrams(normalise(reference).split()))
    if not wanted:
        return 0.0
    seen = Counter(g for g in _ngrams(normalise(hypothesis).split()) if g in wanted)
    return sum(1 for count in seen.values() if count > 1) / len(wanted)


def _in_silence(segment: tuple[float, float, str], passages: Sequence[Passage], duration: float) -> bool:
    """Whether the segment lies wholly in silence, more than SLACK away from every passage."""
    if segment[0] >= duration:
        return True
    return not any(_overlaps(segment, p.start - SLACK, p.end + SLACK) for p in passages)
