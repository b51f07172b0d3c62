"""Spoken output of a Realtime translation: each translated utterance read by the default voice.

It takes a slot of the worker like the utterance's transcription did (`Pipeline.admit_live`), after
that one was given back, and yields raw pcm16 (24 kHz mono, OpenAI's realtime output) sentence by
sentence. Without an installed voice the session sends text only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from whisper_api.engine.encode import encode_all
from whisper_api.engine.speech import SpeechOptions
from whisper_api.web.speech import CHARS_PER_AUDIO_SECOND, spoken_chunks
from whisper_api.web.state import AppState

#: What a session calls to speak a translation: English text in, pcm16 chunks out.
Speak = Callable[[str], Iterator[bytes]]


def live_speaker(state: AppState, is_gone: Callable[[], bool]) -> Speak | None:
    """The session's speaker, or None when no voice is installed (the session stays text only)."""
    if not state.voices.locations():
        return None

    def speak(text: str) -> Iterator[bytes]:
        if not text.strip():
            return
        with state.pipeline.admit_live(is_gone) as job:
            job.start_speaking(len(text) / CHARS_PER_AUDIO_SECOND)
            voice = state.voices.get(state.settings.default_voice or state.voices.locations()[0].name)
            chunks = job.guard(spoken_chunks(voice, text, SpeechOptions()))
            yield from encode_all((c.samples for c in chunks), "pcm", voice.sample_rate)

    return speak
