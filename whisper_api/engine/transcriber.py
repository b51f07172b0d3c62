"""What both engines share: the model's identity, language defaulting and windowed decoding.

An engine's transcriber subclasses `LoadedModel` and supplies two steps: `detect_language` (the
language of the first 30 s) and `decode` (one window of samples, with its prompt); it may add a
third, `decode_utterance`, a short live utterance decoded for latency (engine/utterance.py), which
falls back on the two when its result fails Whisper's checks. When the request names no language,
a multilingual model decodes each window in its own detected language (the `LanguageSwitch`), so a
meeting that moves between languages is written down as spoken instead of forcing every window
into the first one's (which paraphrases, and costs temperature fallbacks).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator

import numpy as np

from whisper_api.engine import utterance
from whisper_api.engine.languages import LanguageSwitch
from whisper_api.engine.types import (
    WINDOW_SECONDS,
    Audio,
    ModelLocation,
    Segment,
    TranscriptionInfo,
    TranscriptionOptions,
)
from whisper_api.engine.windows import (
    EncodeAhead,
    WindowPolicy,
    pauses,
    short_pauses,
    speech_spans,
    transcribe_windowed,
)

#: The language a window is set up in before its own detection replaces it.
DEFAULT_LANGUAGE = "en"


class LoadedModel:
    """A model on a device; `transcribe` is the same for every engine."""

    engine = ""
    #: The engine detects the language of each 30 s window inside a chunk. One that keeps one
    #: language per call (openai-whisper's `transcribe()`) gets chunks of one window when the
    #: windows switch language, or a chunk's later windows would be forced into its first one's.
    switches_inside_chunks = True

    def __init__(self, location: ModelLocation, windows: WindowPolicy | None = None) -> None:
        self.location = location
        self.name = location.name
        self.multilingual = location.multilingual
        self.windows = windows or WindowPolicy()

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Start transcribing; segments are decoded lazily, window by window, as they are read."""
        language = options.named_language(self.multilingual)
        probability = 1.0
        if options.live and not audio.streamed and utterance.fits(audio.duration, options):
            outcome = self.decode_utterance(audio.samples, options)
            if outcome is not None and outcome.accepted:
                return outcome.info, iter(() if outcome.segment is None else (outcome.segment,))
            if outcome is not None and outcome.info.language_probability >= utterance.SURE_LANGUAGE:
                # no second detection for the full window
                language, probability = outcome.info.language, outcome.info.language_probability
        if options.speculative:
            raise utterance.SpeculationDeclined
        if language is None and self.windows.language_per_window:
            return self._transcribe_switching(audio, options)
        if language is None:
            language, probability = self.detect_language(audio, options.languages)
        info = TranscriptionInfo(language, float(probability), audio.duration)
        return info, self._windowed(audio, options, language, None)

    def _transcribe_switching(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Each window in its own language; the first window's detection, made from the encoder
        pass that decodes it, is the transcript's (no separate pass over the first 30 s)."""
        switch = LanguageSwitch(None, options.languages)
        segments = self._windowed(audio, options, DEFAULT_LANGUAGE, switch)
        first = next(segments, None)
        if switch.first is not None:
            language, probability = switch.first
        else:  # no window was decoded (no speech): say what Whisper would have detected
            language, probability = self.detect_language(audio, options.languages)
        info = TranscriptionInfo(language, float(probability), audio.duration)
        return info, segments if first is None else itertools.chain((first,), segments)

    def _windowed(
        self, audio: Audio, options: TranscriptionOptions, language: str, switch: LanguageSwitch | None
    ) -> Iterator[Segment]:
        ahead = self.encode_ahead(options)

        def window(samples: np.ndarray, prompt: str | None) -> Iterator[Segment]:
            current = switch.current if switch is not None else None
            return self.decode(samples, options, current or language, prompt, switch, ahead)

        policy = self.windows
        if switch is not None and not self.switches_inside_chunks:
            policy = dataclasses.replace(policy, chunk_seconds=min(policy.chunk_seconds, WINDOW_SECONDS))
        quick = short_pauses if options.streamed else None  # the first words sooner
        return transcribe_windowed(
            audio, window, speech_spans, policy, options.prompt or None, pauses, ahead, quick
        )

    def encode_ahead(self, options: TranscriptionOptions) -> EncodeAhead | None:
        """A request's encoder running a chunk ahead of its decoder; None where the engine has none."""
        return None

    def detect_language(self, audio: Audio, allowed: tuple[str, ...] = ()) -> tuple[str, float]:
        """The most likely language of the first 30 s (among `allowed` when given), and its probability."""
        raise NotImplementedError

    def decode(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        language: str,
        prompt: str | None,
        switch: LanguageSwitch | None = None,
        ahead: EncodeAhead | None = None,
    ) -> Iterator[Segment]:
        """One window of samples, decoded after `prompt` in `language`, or, with a `switch`, in the
        language it chooses from each 30 s window's detection (segments say which); with `ahead`,
        through the request's encoder running ahead (`encode_ahead`)."""
        raise NotImplementedError

    def decode_utterance(
        self, samples: np.ndarray, options: TranscriptionOptions
    ) -> utterance.Outcome | None:
        """A short live utterance decoded for latency; None where the engine has no such road."""
        return None
