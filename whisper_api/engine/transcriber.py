"""What both engines share: the model's identity, language defaulting and windowed decoding.

An engine's transcriber subclasses `LoadedModel` and supplies two steps: `detect_language` (the
language of the first 30 s) and `decode` (one window of samples, with its prompt); it may add a
third, `decode_utterance`, a short live utterance decoded for latency (engine/utterance.py), which
falls back on the two when its result fails Whisper's checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from whisper_api.engine import utterance
from whisper_api.engine.types import Audio, ModelLocation, Segment, TranscriptionInfo, TranscriptionOptions
from whisper_api.engine.windows import WindowPolicy, speech_spans, transcribe_windowed


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
        language = options.language_for(self.multilingual)
        if options.live and not audio.streamed and utterance.fits(audio.duration, options):
            outcome = self.decode_utterance(audio.samples, options)
            if outcome is not None and outcome.accepted:
                return outcome.info, iter(() if outcome.segment is None else (outcome.segment,))
            if outcome is not None and outcome.info.language_probability >= utterance.SURE_LANGUAGE:
                language = outcome.info.language  # no second detection for the full window
        if options.speculative:
            raise utterance.SpeculationDeclined
        probability = 1.0
        if language is None and len(options.languages) == 1:
            language = options.languages[0]
        elif language is None:
            language, probability = self.detect_language(audio, options.languages)
        info = TranscriptionInfo(language, float(probability), audio.duration)

        def window(samples: np.ndarray, prompt: str | None) -> Iterator[Segment]:
            return self.decode(samples, options, language, prompt)

        return info, transcribe_windowed(audio, window, speech_spans, self.windows, options.prompt or None)

    def detect_language(self, audio: Audio, allowed: tuple[str, ...] = ()) -> tuple[str, float]:
        """The most likely language of the first 30 s (among `allowed` when given), and its probability."""
        raise NotImplementedError

    def decode(
        self, samples: np.ndarray, options: TranscriptionOptions, language: str, prompt: str | None
    ) -> Iterator[Segment]:
        """One window of samples, decoded in `language` after `prompt`."""
        raise NotImplementedError

    def decode_utterance(
        self, samples: np.ndarray, options: TranscriptionOptions
    ) -> utterance.Outcome | None:
        """A short live utterance decoded for latency; None where the engine has no such road."""
        return None
