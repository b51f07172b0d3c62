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

from collections.abc import Iterator

import numpy as np

from whisper_api.engine import utterance
from whisper_api.engine.languages import LanguageSwitch
from whisper_api.engine.types import Audio, ModelLocation, Segment, TranscriptionInfo, TranscriptionOptions
from whisper_api.engine.windows import WindowPolicy, pauses, speech_spans, transcribe_windowed


class LoadedModel:
    """A model on a device; `transcribe` is the same for every engine."""

    engine = ""

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
        switch: LanguageSwitch | None = None
        if language is None:
            language, probability = self.detect_language(audio, options.languages)
            if self.windows.language_per_window:
                switch = LanguageSwitch(language, options.languages)
        info = TranscriptionInfo(language, float(probability), audio.duration)

        def window(samples: np.ndarray, prompt: str | None) -> Iterator[Segment]:
            return self.decode(samples, options, language, prompt, switch)

        return info, transcribe_windowed(
            audio, window, speech_spans, self.windows, options.prompt or None, find_pauses=pauses
        )

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
    ) -> Iterator[Segment]:
        """One window of samples, decoded after `prompt` in `language`, or, with a `switch`, in the
        language it chooses from each 30 s window's detection (segments say which)."""
        raise NotImplementedError

    def decode_utterance(
        self, samples: np.ndarray, options: TranscriptionOptions
    ) -> utterance.Outcome | None:
        """A short live utterance decoded for latency; None where the engine has no such road."""
        return None
