"""A fake transcriber for fast unit tests of the web layer only (no claims about accuracy)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from whisper_api.engine.types import (
    Audio,
    ModelLocation,
    Segment,
    TokenLogprob,
    TranscriptionInfo,
    TranscriptionOptions,
    Word,
)


class FakeTranscriber:
    """Turns the audio length into two segments; records the options it was given."""

    def __init__(self, name: str, multilingual: bool = True) -> None:
        self.name = name
        self.multilingual = multilingual
        self.calls: list[TranscriptionOptions] = []

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        self.calls.append(options)
        half = audio.duration / 2
        texts = (" Grüße, erste Hälfte.", " 日本語の後半。")
        segments = [
            Segment(
                id=i,
                seek=0,
                start=i * half,
                end=(i + 1) * half,
                text=text,
                tokens=(50364, 1000 + i, 50414),
                temperature=options.temperatures[0],
                avg_logprob=-0.25,
                compression_ratio=1.1,
                no_speech_prob=0.01,
                words=tuple(
                    Word(i * half + j * 0.1, i * half + j * 0.1 + 0.1, " " + w, 0.9)
                    for j, w in enumerate(text.split())
                )
                if options.word_timestamps
                else (),
                logprobs=tuple(TokenLogprob(t, -0.5, tuple(t.encode())) for t in re.findall(r"\s?\S+", text))
                if options.logprobs
                else (),
            )
            for i, text in enumerate(texts)
        ]
        info = TranscriptionInfo(options.language or "de", 0.99, audio.duration)
        return info, iter(segments)


def fake_loader(loaded: dict[str, FakeTranscriber]):
    def load(location: ModelLocation) -> FakeTranscriber:
        transcriber = FakeTranscriber(location.name, multilingual=not location.name.endswith(".en"))
        loaded[location.name] = transcriber
        return transcriber

    return load
