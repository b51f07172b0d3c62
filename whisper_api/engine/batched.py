"""Batched decoding: a request's windows, cut at pauses, decoded several at once; nothing lost.

The sequential driver (`windows.py`) decodes one 30 s window, reads where the decoder stopped and
starts the next window there: each window waits for the one before. Here the audio is cut ahead of
decoding, so windows can go to the engine together (one encoder call and one decoder call for a
whole batch, which CTranslate2 runs more efficiently than one window at a time):

- a voice activity detector finds the speech; windows of at most `window_seconds` are cut in the
  middle of pauses, never inside speech, and stretches without speech are not decoded;
- each window is decoded on its own, after the user's prompt (no earlier text: its window has not
  been decoded yet), in its own detected language when the request names none;
- every window's result is then checked, and what the batch may have lost is decoded again with
  the engine's sequential decoding (with the temperature fallback): a window whose text is unsure
  (low log-probability, repetitive, cut by the token limit), and any stretch of speech that no
  segment reaches (a decoder that stopped early, a sentence it left out);
- a streamed request gets a short first window (up to the first pause after `first_seconds`)
  decoded alone, so its first words come within about a second.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from whisper_api.engine.types import SAMPLE_RATE, Audio, Segment
from whisper_api.engine.windows import AudioReader, SpeechFinder, vad_spans

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchPolicy:
    """How audio is cut into windows, how many are decoded at once, and what is decoded again."""

    #: windows decoded in one engine call (1 or less: sequential decoding, `windows.py`)
    batch_size: int = 4
    #: decode the next batch while this one's results are checked and sent
    decode_ahead: bool = True
    #: a batch is split into groups decoded side by side, one per CTranslate2 worker (its decoder
    #: runs a batch on one core); 1 = the whole batch in one call
    parallel_groups: int = 2
    #: longest window (Whisper's context)
    window_seconds: float = 30.0
    #: a streamed request's first window ends at the first pause after this much audio
    first_seconds: float = 3.0
    #: speech no segment reaches for at least this long is decoded again
    min_speech_seconds: float = 0.6
    #: segment times may miss the speech's edges by this much (word times are coarse)
    slack_seconds: float = 0.4
    #: a window is cut in the longest pause among those this close to the last one that fits (a
    #: longer pause is likelier the end of a sentence, which Whisper writes whole)
    choose_seconds: float = 3.0
    #: silence kept before a window's first speech
    lead_seconds: float = 0.3
    #: a window that changes language with a detection less sure than this may hold both: it is
    #: split at its longest pause (of `split_pause_seconds` at least) and each half decoded alone
    sure_language: float = 0.95
    split_pause_seconds: float = 1.0
    #: a window decoded below this average log-probability is decoded again (Whisper's threshold)
    min_avg_logprob: float = -1.0
    #: ...and one whose text compresses better than this (a loop) as well
    max_compression_ratio: float = 2.4

    @property
    def enabled(self) -> bool:
        return self.batch_size > 1


@dataclass(frozen=True)
class Window:
    """A stretch of audio decoded on its own, and where its speech is (absolute seconds)."""

    start: float
    end: float
    speech: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class WindowResult:
    """What the batch decoded for one window: segments with times from the window's start."""

    segments: tuple[Segment, ...]
    #: the decode passed Whisper's quality checks (log-probability, compression, token limit)
    sure: bool
    #: the window's language as decoded, and how sure its detection was
    language: str
    language_probability: float = 1.0


#: Decodes windows (their samples) together; returns one result per window, in order.
BatchDecoder = Callable[[list[np.ndarray]], list[WindowResult]]
#: The engine's sequential decoding of one stretch (samples, language), with the temperature fallback.
SequentialDecoder = Callable[[np.ndarray, str], Iterator[Segment]]


class BatchedTranscription:
    """One request decoded batch by batch; `start` decodes the first batch (it gives the language)."""

    def __init__(
        self,
        audio: Audio,
        decode_batch: BatchDecoder,
        decode_one: SequentialDecoder,
        find_speech: SpeechFinder,
        policy: BatchPolicy,
        streamed: bool = False,
        find_short_pauses: SpeechFinder | None = None,
    ) -> None:
        self.reader = AudioReader(audio)
        self.duration = audio.duration
        self.decode_batch = decode_batch
        self.decode_one = decode_one
        self.find_speech = find_speech
        self.policy = policy
        self.streamed = streamed
        #: finds shorter pauses too, for the short first window of a streamed request (speech read
        #: fluently may not pause for 0.3 s in 20 s)
        self.find_short_pauses = find_short_pauses
        self.pos = 0.0
        self.count = 0
        self.rounds = 0
        self.redecoded = 0  # stretches decoded again sequentially (for logs and tests)
        self.language: str | None = None  # of the last window decoded
        self._first: list[tuple[Window, np.ndarray, WindowResult]] | None = None

    def start(self) -> WindowResult | None:
        """Decode the first batch now; its first window's result (None: the audio has no speech)."""
        self._first = self._round()
        return self._first[0][2] if self._first else None

    def segments(self) -> Iterator[Segment]:
        """Every segment in time order, numbered from 0, with absolute times."""
        # The next batch is decoded while this one is checked and sent: its encoder runs beside
        # this batch's decoding again of what it lost and the client's reading.
        pool = ThreadPoolExecutor(1, thread_name_prefix="batch-ahead") if self.policy.decode_ahead else None
        ahead: Future[list[tuple[Window, np.ndarray, WindowResult]]] | None = None
        try:
            batch = self._first if self._first is not None else self._round()
            self._first = None
            while batch:
                ahead = pool.submit(self._round) if pool is not None else None
                for window, samples, result in batch:
                    yield from self._checked(window, samples, result)
                batch = ahead.result() if ahead is not None else self._round()
                ahead = None
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)  # a batch in flight finishes first
            self.reader.close()

    def _round(self) -> list[tuple[Window, np.ndarray, WindowResult]]:
        """Plan the next batch of windows from `pos`, decode them, and move `pos` past them."""
        policy = self.policy
        while self.pos < self.duration:
            first = self.streamed and self.rounds == 0
            count = 1 if first else policy.batch_size
            # One window more than needed is read, so the last cut falls in a pause that is known
            # (a streamed request's short first window needs only a window more than its length).
            begin = self.pos
            reach = (
                policy.first_seconds + policy.window_seconds if first else (count + 1) * policy.window_seconds
            )
            horizon = min(self.duration, begin + reach)
            block = self.reader.read(begin, horizon)
            find = self.find_short_pauses if first and self.find_short_pauses else self.find_speech
            spans = [(begin + a, begin + b) for a, b in find(block)]
            windows = plan_windows(
                begin,
                horizon,
                spans,
                count,
                policy,
                final=horizon >= self.duration,
                first_seconds=policy.first_seconds if first else None,
            )
            self.rounds += 1
            if not windows:
                # No speech before the horizon, or only speech that starts late and runs past it.
                self.pos = horizon if not spans else max(begin + 1.0, spans[0][0] - policy.lead_seconds)
                continue
            self.pos = windows[-1].end
            logger.debug("batch: %s", ", ".join(f"{w.start:.1f}-{w.end:.1f}" for w in windows))
            pieces = [_slice(block, w.start - begin, w.end - w.start) for w in windows]
            return list(zip(windows, pieces, self.decode_batch(pieces), strict=True))
        return []

    def _checked(
        self, window: Window, samples: np.ndarray, result: WindowResult, split: bool = True
    ) -> Iterator[Segment]:
        """The window's segments, with what the batch lost decoded again sequentially."""
        pause = _longest_pause_inside(window)
        if (
            split
            and self.language is not None
            and result.language != self.language
            and result.language_probability < self.policy.sure_language
            and pause is not None
            and pause[1] - pause[0] >= self.policy.split_pause_seconds
        ):
            # Perhaps one language, then another: each side of the pause in its own language.
            cut = (pause[0] + pause[1]) / 2
            logger.info(
                "window %.1f-%.1f s split at %.1f s (language change?)", window.start, window.end, cut
            )
            halves = [
                Window(window.start, cut, tuple(s for s in window.speech if s[1] <= cut)),
                Window(cut, window.end, tuple(s for s in window.speech if s[0] >= cut)),
            ]
            pieces = [_slice(samples, h.start - window.start, h.end - h.start) for h in halves]
            for half, piece, again in zip(halves, pieces, self.decode_batch(pieces), strict=True):
                yield from self._checked(half, piece, again, split=False)
            return
        self.language = result.language
        if not result.sure:
            logger.info("window %.1f-%.1f s unsure: decoded again sequentially", window.start, window.end)
            yield from self._again(window, samples, result.language, window.start, window.end)
            return
        segments = [_shifted(s, window.start) for s in result.segments]
        edges = [window.start] + [x for s in segments for x in (s.start, s.end)] + [window.end]
        # The stretches between segments (and before the first, after the last): speech there is lost.
        for i, segment in enumerate([*segments, None]):
            gap_start, gap_end = edges[2 * i], edges[2 * i + 1]
            if _uncovered(window.speech, gap_start, gap_end, self.policy) >= self.policy.min_speech_seconds:
                logger.info("speech at %.1f-%.1f s left out by the batch: decoded again", gap_start, gap_end)
                yield from self._again(window, samples, result.language, gap_start, gap_end)
            if segment is not None:
                yield self._emit(segment)

    def _again(
        self, window: Window, samples: np.ndarray, language: str, start: float, end: float
    ) -> Iterator[Segment]:
        """Sequential decoding of [start, end) inside the window, from just before its first speech."""
        self.redecoded += 1
        speech = [a for a, b in window.speech if b > start and a < end]
        begin = max(start, (speech[0] if speech else start) - self.policy.lead_seconds)
        stretch = _slice(samples, begin - window.start, end - begin)
        decoded = self.decode_one(stretch, language)
        try:
            for raw in decoded:
                segment = _shifted(raw, begin)
                if segment.language is None:
                    segment = dataclasses.replace(segment, language=language)
                if segment.start >= end:
                    break
                yield self._emit(segment)
        finally:
            close = getattr(decoded, "close", None)
            if close is not None:
                close()

    def _emit(self, segment: Segment) -> Segment:
        segment = dataclasses.replace(segment, id=self.count)
        self.count += 1
        return segment


def plan_windows(
    pos: float,
    horizon: float,
    spans: list[tuple[float, float]],
    count: int,
    policy: BatchPolicy,
    final: bool,
    first_seconds: float | None = None,
) -> list[Window]:
    """Up to `count` windows from `pos` holding the speech `spans` (absolute) found before `horizon`.

    A window starts just before its first speech and ends in the middle of the pause after the last
    speech that fits in `window_seconds` (with `first_seconds`, the first window ends at the first
    pause after that much). Speech without a pause for a whole window is cut at the window's length.
    Unless the horizon is the audio's end, speech running up to it is left for the next round.
    """
    spans = [(max(a, pos), min(b, horizon)) for a, b in spans if b > pos and a < horizon]
    following = horizon  # where the speech after the last span starts (as far as is known)
    if not final and spans and spans[-1][1] >= horizon - 0.05:
        following = spans.pop()[0]  # its end is not known yet: left for the next round
    windows: list[Window] = []
    start = pos
    i = 0
    while i < len(spans) and len(windows) < count:
        start = max(start, spans[i][0] - policy.lead_seconds)
        longest = start + policy.window_seconds
        short = start + first_seconds if first_seconds is not None and not windows else None
        j = i
        while j < len(spans) and spans[j][1] <= longest:
            j += 1
            if short is not None and spans[j - 1][1] >= short:
                break
        if j == i:  # no pause in a whole window of speech: cut it at the window's length
            windows.append(Window(start, longest, ((max(start, spans[i][0]), longest),)))
            spans[i] = (longest, spans[i][1])
            start = longest
            continue
        if short is None and (j < len(spans) or not final):
            j = _longest_pause(spans, i, j, following, spans[j - 1][1] - policy.choose_seconds)
        if j < len(spans):
            end = min(longest, (spans[j - 1][1] + spans[j][0]) / 2)
        elif final:
            end = min(longest, horizon)
        else:
            end = min(longest, (spans[j - 1][1] + following) / 2)
        windows.append(Window(start, end, tuple((max(a, start), b) for a, b in spans[i:j])))
        start = end
        i = j
    return windows


def _longest_pause_inside(window: Window) -> tuple[float, float] | None:
    """The longest silence between two of the window's speech spans."""
    pauses = [(a[1], b[0]) for a, b in zip(window.speech, window.speech[1:], strict=False)]
    return max(pauses, key=lambda p: p[1] - p[0], default=None)


def _longest_pause(
    spans: list[tuple[float, float]], i: int, j: int, following: float, earliest: float
) -> int:
    """Where to cut after spans[i:j] (the index of the first span left out): after the span ending
    at or after `earliest` that the longest pause follows (the later one on a tie)."""
    best, best_pause = j, -1.0
    for k in range(j - 1, i - 1, -1):
        if spans[k][1] < earliest:
            break
        pause = (spans[k + 1][0] if k + 1 < len(spans) else following) - spans[k][1]
        if pause > best_pause:
            best, best_pause = k + 1, pause
    return best


def pauses_and_speech(samples: np.ndarray, min_silence_ms: int = 300) -> list[tuple[float, float]]:
    """Speech spans (seconds) split at every pause of `min_silence_ms` or more, none longer than 28 s.

    Silero VAD (shipped with faster-whisper); a span that would run past 28 s is split at its
    longest silence, so windows can nearly always be cut between words.
    """
    return vad_spans(
        samples,
        min_silence_duration_ms=min_silence_ms,
        speech_pad_ms=min(100, min_silence_ms // 3),
        max_speech_duration_s=28.0,
    )


def _uncovered(
    speech: tuple[tuple[float, float], ...], start: float, end: float, policy: BatchPolicy
) -> float:
    """Seconds of speech between `start` and `end`, less the slack at both edges."""
    low, high = start + policy.slack_seconds, end - policy.slack_seconds
    return sum(max(0.0, min(b, high) - max(a, low)) for a, b in speech)


def _slice(samples: np.ndarray, offset: float, seconds: float) -> np.ndarray:
    first = max(0, int(round(offset * SAMPLE_RATE)))
    return samples[first : first + int(round(seconds * SAMPLE_RATE))]


def _shifted(segment: Segment, offset: float) -> Segment:
    """The segment with times (and its words' times) moved by `offset` seconds."""
    if offset == 0:
        return segment
    return dataclasses.replace(
        segment,
        seek=segment.seek + round(offset * 100),
        start=segment.start + offset,
        end=segment.end + offset,
        words=tuple(
            dataclasses.replace(w, start=w.start + offset, end=w.end + offset) for w in segment.words
        ),
    )
