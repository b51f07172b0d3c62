"""What both engines share: the model's identity, language defaulting and windowed decoding.

An engine's transcriber subclasses `LoadedModel` and supplies two steps: `detect_language` (the
language of the first 30 s) and `decode` (one window of samples, with its prompt). When the request
names no language, a multilingual model decodes each window in its own detected language (the
`LanguageSwitch`), so a meeting that moves between languages is written down as spoken instead of
forcing every window into the first one's (which paraphrases, and costs temperature fallbacks).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

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
        language = options.language_for(self.multilingual)
        probability = 1.0
        switch: LanguageSwitch | None = None
        if language is None and len(options.languages) == 1:
            language = options.languages[0]
        elif language is None:
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
