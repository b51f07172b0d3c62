"""A live input buffer that finds where people start and stop speaking (streaming Silero VAD).

The Silero model that ships inside faster-whisper scores every 32 ms window; its recurrent state is
carried from one chunk to the next, so streaming gives the same scores as scoring the whole
recording at once. `InputBuffer` keeps the audio since the last commit and, when turn detection is
on, commits by itself after `silence_duration_ms` of silence, as OpenAI's `server_vad` does.

Waiting out that silence before decoding would add its length to every transcript's latency, so
the buffer also says when speech pauses (`PAUSE_MS` of silence, `SpeechPaused` with the audio so
far): the session decodes it then, speculatively, and uses that text if speech stops there, or
drops it when speech resumes (`SpeechResumed`) before `silence_duration_ms` has passed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_api.engine.types import SAMPLE_RATE, Audio

WINDOW = 512  # samples the model scores at a time at 16 kHz (32 ms)
_CONTEXT = 64  # samples of the previous window the model sees with each one
#: Silero's hysteresis: speech ends when the score falls this far below the start threshold.
_HYSTERESIS = 0.15
#: Silence after which a pause is announced (gaps between words are shorter; a decode of a few
#: seconds of speech takes about 0.3 s, so its text is ready when 500 ms of silence end the turn).
PAUSE_MS = 150


@dataclass(frozen=True)
class TurnDetection:
    """OpenAI's `server_vad` parameters."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500


@dataclass(frozen=True)
class SpeechStarted:
    audio_start_ms: int


@dataclass(frozen=True)
class SpeechStopped:
    """Speech ended; `audio` is the utterance the buffer committed by itself."""

    audio_end_ms: int
    audio: Audio


@dataclass(frozen=True)
class SpeechPaused:
    """Speech paused (it may resume): `audio` is a copy of the utterance so far; the buffer keeps it."""

    audio: Audio


@dataclass(frozen=True)
class SpeechResumed:
    """Speech went on after a pause: what `SpeechPaused` gave is not the whole utterance."""


TurnEvent = SpeechStarted | SpeechStopped | SpeechPaused | SpeechResumed


@functools.cache
def _vad_session() -> Any:  # noqa: ANN401 - onnxruntime.InferenceSession; run() is thread-safe
    from faster_whisper.vad import get_vad_model  # onnxruntime: imported only when a session starts

    return get_vad_model().session


class StreamingVad:
    """Speech probability per 32 ms window of a continuous 16 kHz stream."""

    def __init__(self) -> None:
        self._session = _vad_session()
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(_CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Scores of the whole windows completed by `samples` (the rest waits for more audio)."""
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = len(data) // WINDOW * WINDOW
        self._pending = data[whole:].copy()
        if whole == 0:
            return np.zeros(0, dtype=np.float32)
        windows = data[:whole].reshape(-1, WINDOW)
        contexts = np.vstack([self._context, windows[:-1, -_CONTEXT:]])
        self._context = windows[-1, -_CONTEXT:].copy()
        rows = np.hstack([contexts, windows]).astype(np.float32, copy=False)
        scores, self._h, self._c = self._session.run(None, {"input": rows, "h": self._h, "c": self._c})
        return np.asarray(scores, dtype=np.float32).reshape(-1)


class InputBuffer:
    """Audio appended since the last commit, with optional server-side turn detection."""

    def __init__(self, turn_detection: TurnDetection | None = None) -> None:
        self._chunks: list[np.ndarray] = []
        self._size = 0
        self._start = 0  # stream position (samples) of the buffer's first sample
        self._position = 0  # samples appended since the session began
        self.configure(turn_detection)

    def configure(self, turn_detection: TurnDetection | None) -> None:
        """Switch turn detection on, off, or to new parameters (a running utterance is kept)."""
        self.turn_detection = turn_detection
        self._vad = StreamingVad() if turn_detection is not None else None
        self._scored = self._position  # stream position of the next window to score
        self._speaking = False
        self._silence_from: int | None = None
        self._paused = False

    @property
    def seconds(self) -> float:
        """Audio held, in seconds."""
        return self._size / SAMPLE_RATE

    @property
    def speaking(self) -> bool:
        return self._speaking

    def append(self, samples: np.ndarray) -> list[TurnEvent]:
        """Add 16 kHz samples; with turn detection, the speech starts and stops they complete."""
        if samples.size:
            self._chunks.append(samples)
            self._size += samples.size
            self._position += samples.size
        if self._vad is None:
            return []
        events: list[TurnEvent] = []
        for score in self._vad.feed(samples):
            window_start = self._scored
            self._scored += WINDOW
            events.extend(self._score(float(score), window_start))
        if not self._speaking:
            self._drop_before(self._scored - self._padding_samples())
        return events

    def _score(self, score: float, window_start: int) -> list[TurnEvent]:
        detection = self.turn_detection
        assert detection is not None
        if not self._speaking:
            if score >= detection.threshold:
                self._speaking = True
                self._silence_from = None
                start = max(self._start, window_start - self._padding_samples())
                self._drop_before(start)
                return [SpeechStarted(_ms(start))]
            return []
        if score >= detection.threshold - _HYSTERESIS:
            self._silence_from = None
            if self._paused:
                self._paused = False
                return [SpeechResumed()]
            return []
        if self._silence_from is None:
            self._silence_from = window_start
        window_end = window_start + WINDOW
        silent = window_end - self._silence_from
        if silent < detection.silence_duration_ms * SAMPLE_RATE // 1000:
            if not self._paused and silent >= PAUSE_MS * SAMPLE_RATE // 1000:
                self._paused = True
                return [SpeechPaused(self._peek(window_end))]
            return []
        self._speaking = False
        self._paused = False
        end_ms = _ms(self._silence_from)
        self._silence_from = None
        audio = self._take(window_end)
        return [SpeechStopped(end_ms, audio)]

    def commit(self) -> Audio:
        """Everything held, as one utterance; the buffer starts empty again."""
        self._speaking = False
        self._silence_from = None
        self._paused = False
        return self._take(self._position)

    def clear(self) -> None:
        self._take(self._position)
        self._speaking = False
        self._silence_from = None
        self._paused = False

    def _padding_samples(self) -> int:
        detection = self.turn_detection
        return 0 if detection is None else detection.prefix_padding_ms * SAMPLE_RATE // 1000

    def _take(self, until: int) -> Audio:
        """The held samples up to stream position `until`; the rest stays."""
        data = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        cut = max(0, min(until - self._start, data.size))
        taken, rest = data[:cut], data[cut:]
        self._chunks = [rest] if rest.size else []
        self._size = rest.size
        self._start += cut
        return Audio(np.ascontiguousarray(taken, dtype=np.float32))

    def _peek(self, until: int) -> Audio:
        """A copy of the held samples up to stream position `until`; the buffer keeps them."""
        data = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.float32)
        self._chunks = [data] if data.size else []
        return Audio(data[: max(0, until - self._start)].copy())

    def _drop_before(self, position: int) -> None:
        if position > self._start:
            self._take(position)


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE
