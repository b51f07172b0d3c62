"""Long audio in bounded chunks, cut where the decoder itself left off, with skipped speech filled in.

Whisper decodes 30 s windows one after the other. Handed a whole file at once, an engine computes
the features of all of it (memory that grows with the file) and, when a window ends in a way the
decoder reads as "nothing more here" (a single timestamp at the end, or a no-speech verdict), it
jumps over the rest of that window: on long audio that switches language this silently drops whole
passages. This driver fixes both, for any engine that can decode a short array:

- the audio goes to the engine in chunks of at most `chunk_seconds` (240 s by default; the engine
  seeks from one 30 s window to the next inside a chunk, as Whisper does, each window in its own
  detected language; 30 s chunks, one window each, cost more encoder passes and, on the bench's
  clips, gave more word errors: a window cut short of its natural end loses the context after it),
  cut in the longest pause a voice activity detector finds in its last two thirds, so no word is
  cut; the next chunk starts at that cut once the transcript reaches the pause (so an engine can
  encode it while this one decodes: `EncodeAhead`), else where the last segment ended, but never
  a whole window later when the decoder stopped early; where no pause was found, a segment that
  the cut may have cut short is decoded again, whole, with the next chunk; a streamed request's
  first chunk ends in the first short pause after 2 s, so its first words come out after one
  short decode;
- the text of confident segments conditions the next chunk, as the engine conditions each window
  on the previous one; an unsure window (another language forced into this one, noise) keeps only
  its first segment and conditions nothing, so it cannot run on over the speech that follows;
- a stretch longer than `gap_seconds` between two segments, or a chunk that yielded nothing, is
  checked with a voice activity detector, and speech found there is decoded on its own, without
  the conditioning that made the decoder skip it;
- a segment without text, or with text that repeats itself far denser than speech (the decoder
  looping over the few frames after a window's last timestamp), is not passed on.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from whisper_api.engine.types import SAMPLE_RATE, Audio, Segment
from whisper_api.engine.utterance import COMPRESSION_RATIO_LIMIT
from whisper_api.engine.vad import bound_vad_batches

logger = logging.getLogger(__name__)

#: Characters of earlier text a chunk is conditioned on (about Whisper's 223-token prompt limit).
PROMPT_CHARACTERS = 800
#: Above this temperature the text is too unsure to condition on (Whisper's prompt reset).
PROMPT_RESET_TEMPERATURE = 0.5

#: Whisper's context (448 tokens) less the longest prompt an engine builds (223 tokens of earlier
#: text and up to 5 control tokens).
MAX_WINDOW_TOKENS = 220
#: Speech yields 3-6 tokens a second (`sparse`); text that repeats itself at more than this many
#: tokens a second of its span (at least a second) was not spoken there (`invented`).
CROWDED_TOKENS_PER_SECOND = 25

#: Decodes one chunk: samples, and the text to condition on (the user's prompt, or earlier text).
ChunkDecoder = Callable[[np.ndarray, "str | None"], Iterator[Segment]]
#: Speech spans (start, end), in seconds, inside the samples given.
SpeechFinder = Callable[[np.ndarray], list[tuple[float, float]]]
#: Pauses (start, end), in seconds, inside the samples given: the silences between speech.
PauseFinder = Callable[[np.ndarray], list[tuple[float, float]]]


class EncodeAhead(Protocol):
    """An engine's encoder running one chunk ahead: while a chunk decodes, the chunk after it
    (the one that starts at its cut, known before the decode) is encoded on a spare core."""

    def prefetch(self, samples: np.ndarray) -> None:
        """Start encoding the chunk likely decoded next (`decode` uses it if it is that chunk)."""

    def close(self) -> None:
        """Drop what was encoded ahead (the transcription is over)."""


@dataclass(frozen=True)
class _Cut:
    """Where a chunk ends."""

    end: float  # absolute time
    in_pause: bool  # no word is cut there
    silent: bool  # the chunk holds no speech at all
    speech_end: float  # where the pause it is cut in starts (`end` when not cut in a pause)
    quick: bool = False  # a streamed request's short first chunk


@dataclass(frozen=True)
class WindowPolicy:
    """How long audio is cut into chunks and checked for skipped speech."""

    #: longest chunk handed to the engine at once (bounds features and decoder memory); the engine
    #: decodes it in Whisper's 30 s windows, each starting where the last one's text stopped
    chunk_seconds: float = 240.0
    #: segments ending this close to a chunk's cut are decoded again with the next chunk
    edge_seconds: float = 3.0
    #: silence between segments longer than this is checked for speech the decoder skipped
    gap_seconds: float = 4.0
    #: speech in such a stretch shorter than this is left alone (a breath, a cough)
    min_speech_seconds: float = 1.5
    #: text decoded with a lower average log-probability does not condition what follows: an
    #: unsure window (another language, noise) would otherwise pull the next ones off course
    condition_min_logprob: float = -0.5
    #: most tokens decoded for one window at one temperature, so no input (a repeated prompt,
    #: noise, NaN samples) makes a window cost more than a fixed multiple of a normal one
    max_window_tokens: int = 220
    #: with no language in the request, decode each window in its own detected language
    language_per_window: bool = True
    #: a chunk is cut in a pause found after this share of its length (else at its full length)
    earliest_cut: float = 1 / 3
    #: a segment this long with under 2 tokens per second skipped speech: decoded again
    sparse_seconds: float = 10.0
    #: a streamed request's first chunk ends in the first short pause after this much audio (its
    #: first words are sent sooner), if there is one before `first_chunk_seconds`
    first_text_seconds: float = 2.0
    first_chunk_seconds: float = 10.0

    @property
    def window_tokens(self) -> int:
        """The token limit, within Whisper's 448-token context beside the longest prompt (228)."""
        return max(1, min(self.max_window_tokens, MAX_WINDOW_TOKENS))


def transcribe_windowed(
    audio: Audio,
    decode: ChunkDecoder,
    find_speech: SpeechFinder,
    policy: WindowPolicy,
    prompt: str | None = None,
    find_pauses: PauseFinder | None = None,
    ahead: EncodeAhead | None = None,
    quick_start: PauseFinder | None = None,
) -> Iterator[Segment]:
    """Segments of the whole audio in time order, numbered from 0, with absolute times; with
    `quick_start` (which finds short pauses too), a short first chunk (a streamed request's)."""
    transcription = _Transcription(audio, decode, find_speech, policy, find_pauses, ahead, quick_start)
    return transcription.run(prompt)


class _Transcription:
    """One windowed transcription: where it has reached, and the text that conditions the next chunk."""

    def __init__(
        self,
        audio: Audio,
        decode: ChunkDecoder,
        find_speech: SpeechFinder,
        policy: WindowPolicy,
        find_pauses: PauseFinder | None = None,
        ahead: EncodeAhead | None = None,
        quick_start: PauseFinder | None = None,
    ) -> None:
        self.reader = AudioReader(audio)
        self.ahead = ahead
        self.quick_start = quick_start
        self._cuts: dict[float, _Cut] = {}
        self.duration = audio.duration
        self.decode = decode
        self.find_speech = find_speech
        self.find_pauses = find_pauses
        self.policy = policy
        self.count = 0
        self.last_end = 0.0
        self.context: list[str] = []
        self.context_language: str | None = None

    def run(self, prompt: str | None) -> Iterator[Segment]:
        policy = self.policy
        pos = 0.0
        conditioning = prompt
        # The user's prompt stays at the head of the earlier text until a reset, as in Whisper.
        self.context = [prompt.strip() + " "] if prompt else []
        try:
            while pos < self.duration:
                # This chunk and the next: the next one's start is known when this one is cut in a
                # pause (it starts at the cut once the transcript reaches that pause).
                samples = self.reader.read(pos, min(pos + 2 * policy.chunk_seconds, self.duration))
                chunk = self.cut_after(pos, samples)
                cut, in_pause = chunk.end, chunk.in_pause
                final = cut >= self.duration
                if chunk.silent:
                    pos = cut
                    continue
                crossing: float | None = None
                segments = self.decode(_between(samples, pos, pos, cut), conditioning)
                if in_pause and not final and self.ahead is not None and not chunk.quick:
                    # (after a short first chunk, finding the next cut would delay the first words)
                    following = self.cut_after(cut, _between(samples, pos, cut, self.duration))
                    if not following.silent:
                        self.ahead.prefetch(_between(samples, pos, cut, following.end))
                try:
                    for raw in segments:
                        segment = _shifted(raw, pos)
                        if (
                            not final
                            and not in_pause
                            and segment.end > cut - policy.edge_seconds
                            and segment.start > pos + 1.0
                        ):
                            # Cut short by the chunk's end: decoded again, whole, with the next chunk.
                            crossing = segment.start
                            break
                        unsure = segment.avg_logprob < policy.condition_min_logprob
                        if unsure and self.last_end > pos + policy.edge_seconds and not final:
                            # An unsure window (another language forced into this one) can run on
                            # over what follows: keep its first segment, decode the rest afresh.
                            crossing = segment.start
                            break
                        if not segment.text.strip():
                            continue  # Whisper clears an instantaneous segment's text but keeps it
                        if self.invented(segment):
                            logger.info("a segment repeating itself far denser than speech was dropped")
                            continue
                        if self.sparse(segment):
                            # A long segment with a few words: the decoder jumped over the speech in
                            # it (a timestamp failure); its stretch is decoded again on its own.
                            yield from self.fill(max(self.last_end, pos), segment.end)
                            continue
                        yield from self.fill(max(self.last_end, pos), segment.start)
                        yield self.emit(segment)
                        self.condition_on(segment)
                finally:
                    _close(segments)
                if final:
                    # Nothing follows to pick up speech the decoder left at the very end.
                    tail = self.policy.min_speech_seconds
                    yield from self.fill(max(self.last_end, pos), self.duration, min_gap=tail)
                    return
                if in_pause and self.last_end >= chunk.speech_end - REACHED_PAUSE_SECONDS:
                    # The transcript reaches the pause the chunk was cut in: the next chunk
                    # starts at the cut (the chunk encoded ahead).
                    pos = cut
                elif self.last_end > pos + policy.edge_seconds:
                    # The next chunk starts where the transcript stops, not a whole window later
                    # as Whisper jumps after a window that ends on a single timestamp.
                    pos = self.last_end
                else:
                    # Nothing (or a word) came out of this chunk: speech in it was skipped.
                    resume = cut if crossing is None else crossing
                    yield from self.fill(max(self.last_end, pos), resume)
                    pos = max(self.last_end, resume)
                conditioning = "".join(self.context)[-PROMPT_CHARACTERS:].strip() or None
        finally:
            self.reader.close()
            if self.ahead is not None:
                self.ahead.close()

    def cut_after(self, pos: float, samples: np.ndarray) -> _Cut:
        """Where the chunk from `pos` (its audio and what follows: `samples`) ends, whether that is
        in a pause (no word is cut there), and whether the chunk holds no speech at all (it is not
        decoded: Whisper invents text over silence and noise, and it costs a window's work for
        nothing)."""
        if pos not in self._cuts:
            self._cuts = {pos: self._cut(pos, samples)}  # the next chunk's, worked out ahead
        return self._cuts[pos]

    def _cut(self, pos: float, samples: np.ndarray) -> _Cut:
        end = min(pos + self.policy.chunk_seconds, self.duration)
        if self.find_pauses is None:
            return _Cut(end, end >= self.duration, False, end)
        if pos == 0.0 and self.quick_start is not None:
            quick = self._quick_cut(samples, self.quick_start)
            if quick is not None:
                return quick
        length = end - pos
        found = self.find_pauses(_between(samples, pos, pos, end))
        if len(found) == 1 and found[0][0] <= 0.0 and found[0][1] >= length - 0.01:
            return _Cut(end, True, True, pos)
        if end >= self.duration:
            return _Cut(end, True, False, end)
        earliest = self.policy.chunk_seconds * self.policy.earliest_cut
        pauses = [p for p in found if p[1] >= earliest]
        if not pauses:
            return _Cut(end, False, False, end)
        # The longest pause: a breath inside a sentence is short, the end of a sentence or a turn long.
        start, stop = max(reversed(pauses), key=lambda p: min(p[1], length) - max(p[0], earliest))
        return _Cut(pos + max(earliest, (start + stop) / 2), True, False, pos + start)

    def _quick_cut(self, samples: np.ndarray, find_short_pauses: PauseFinder) -> _Cut | None:
        """The first chunk's end in the first short pause after `first_text_seconds`, or None."""
        policy = self.policy
        reach = min(policy.first_chunk_seconds, self.duration)
        found = find_short_pauses(_between(samples, 0.0, 0.0, reach))
        between_words = [(a, b) for a, b in found if a > 0.0 and b < reach]
        later = [(a, b) for a, b in between_words if a >= policy.first_text_seconds]
        if not later:
            return None
        start, stop = later[0]
        return _Cut((start + stop) / 2, True, False, start, quick=True)

    def sparse(self, segment: Segment) -> bool:
        """Too little text for its length: in tokens, which speech yields at 3-6 a second in any
        language (words and characters depend on the script)."""
        seconds = segment.end - segment.start
        return seconds >= self.policy.sparse_seconds and len(segment.tokens) < 2 * seconds

    def invented(self, segment: Segment) -> bool:
        """Text that repeats itself (it fails Whisper's compression-ratio check) far denser than
        speech: the decoder looping over the few frames left after a window's last timestamp,
        which openai-whisper's `transcribe()` decodes as a window of their own (0.32 s at the end
        of multilingual.mp3, conditioned on the German before it, gave one phrase 100 times)."""
        seconds = max(segment.end - segment.start, 1.0)
        crowded = len(segment.tokens) > CROWDED_TOKENS_PER_SECOND * seconds
        return crowded and segment.compression_ratio > COMPRESSION_RATIO_LIMIT

    def emit(self, segment: Segment) -> Segment:
        segment = dataclasses.replace(segment, id=self.count)
        self.count += 1
        self.last_end = max(self.last_end, segment.end)
        return segment

    def condition_on(self, segment: Segment) -> None:
        if segment.language != self.context_language:
            if self.context_language is not None:
                self.context.clear()  # text in one language would pull the next chunk into it
            self.context_language = segment.language
        if (
            segment.temperature > PROMPT_RESET_TEMPERATURE
            or segment.avg_logprob < self.policy.condition_min_logprob
        ):
            self.context.clear()
        else:
            self.context.append(segment.text)

    def fill(self, start: float, end: float, min_gap: float | None = None) -> Iterator[Segment]:
        """Decode speech the decoder jumped over between `start` and `end` (nothing when silent)."""
        if end - start <= (self.policy.gap_seconds if min_gap is None else min_gap):
            return
        stretch = self.reader.read(start, end)
        spans = self.find_speech(stretch)
        if sum(b - a for a, b in spans) < self.policy.min_speech_seconds:
            return
        begin = max(0.0, spans[0][0] - 0.2)
        logger.info("re-decoding speech skipped between %.1f s and %.1f s", start, end)
        segments = self.decode(stretch[int(begin * SAMPLE_RATE) :], None)
        try:
            for raw in segments:
                segment = _shifted(raw, start + begin)
                if segment.start >= end:
                    break
                yield self.emit(segment)
                self.condition_on(segment)
        finally:
            _close(segments)


#: A transcript ending this close before the pause a chunk was cut in has reached it (Whisper's
#: segment ends fall a little before or after the last word's).
REACHED_PAUSE_SECONDS = 0.5


def _between(samples: np.ndarray, offset: float, start: float, end: float) -> np.ndarray:
    """`samples` (which begin at `offset` s) from `start` to `end`: the same samples, to the
    sample, as `AudioReader.read(start, end)` returns."""
    base = int(offset * SAMPLE_RATE)
    return samples[max(0, int(start * SAMPLE_RATE) - base) : max(0, int(end * SAMPLE_RATE) - base)]


class AudioReader:
    """Reads audio by time range, in increasing order, keeping only what was asked last decoded."""

    def __init__(self, audio: Audio) -> None:
        self.audio = audio
        self._blocks: Iterator[np.ndarray] | None = None
        self._buffer = np.zeros(0, dtype=np.float32)
        self._start = 0  # sample index of the buffer's first sample

    def read(self, start: float, end: float) -> np.ndarray:
        first = max(0, int(start * SAMPLE_RATE))
        last = min(self.audio.frames, int(end * SAMPLE_RATE))
        if not self.audio.streamed:
            return self.audio.samples[first:last]
        if self._blocks is None or first < self._start:
            self.close()
            self._blocks = self.audio.blocks()
            self._buffer = np.zeros(0, dtype=np.float32)
            self._start = 0
        # Forget what lies before this read (reads never go back), then decode up to its end.
        drop = min(first - self._start, len(self._buffer))
        pieces = [self._buffer[drop:]]
        self._start += drop
        have = self._start + len(pieces[0])
        while have < last:
            block = next(self._blocks, None)
            if block is None:
                break
            pieces.append(block)
            have += len(block)
        self._buffer = np.concatenate(pieces) if len(pieces) > 1 else pieces[0].copy()
        return self._buffer[first - self._start : last - self._start]

    def close(self) -> None:
        if self._blocks is not None:
            _close(self._blocks)
            self._blocks = None


def _close(iterator: object) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def vad_spans(samples: np.ndarray, **options: float) -> list[tuple[float, float]]:
    """Where Silero VAD (shipped with faster-whisper) hears speech, in seconds; `options` are its
    `VadOptions` (its defaults when none)."""
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    bound_vad_batches()
    return [
        (chunk["start"] / SAMPLE_RATE, chunk["end"] / SAMPLE_RATE)
        for chunk in get_speech_timestamps(samples, VadOptions(**options))
    ]


def speech_spans(samples: np.ndarray) -> list[tuple[float, float]]:
    """Where Silero VAD hears speech with its default options, in seconds."""
    return vad_spans(samples)


#: Shortest silence a chunk is cut in, and the speech kept on each side of the cut (ms).
PAUSE_MS = 300
PAUSE_PAD_MS = 100


def pauses(samples: np.ndarray, shortest_ms: int = PAUSE_MS) -> list[tuple[float, float]]:
    """The silences of at least `shortest_ms` between Silero VAD's speech spans, and the samples'
    silent end (a chunk may be cut anywhere in them), in seconds."""
    pad = min(PAUSE_PAD_MS, shortest_ms // 3)
    spans = vad_spans(samples, min_silence_duration_ms=shortest_ms, speech_pad_ms=pad)
    edges = [0.0, *(t for span in spans for t in span), len(samples) / SAMPLE_RATE]
    silences = list(zip(edges[::2], edges[1::2], strict=True))
    return [(a, b) for a, b in silences if b - a >= shortest_ms / 1000]


#: The shortest pause a streamed request's first chunk may end in (a fluent reader's breath).
SHORT_PAUSE_MS = 120


def short_pauses(samples: np.ndarray) -> list[tuple[float, float]]:
    """Pauses down to SHORT_PAUSE_MS: where a streamed request's short first chunk may end."""
    return pauses(samples, SHORT_PAUSE_MS)


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
