"""Spoken chat answers (`modalities: ["text", "audio"]`): the answer's text in the asked voice and format.

Synthesis takes its own admission slot (the pipeline's road, like `/v1/audio/speech`), after any
transcription slot of the same request was given back, so one request never waits on itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from whisper_api.engine.encode import encode_all
from whisper_api.engine.speech import SpeechOptions
from whisper_api.errors import ApiError
from whisper_api.web.pipeline import Pipeline
from whisper_api.web.speech import CHARS_PER_AUDIO_SECOND, base64_pieces, spoken_chunks
from whisper_api.web.state import AppState
from whisper_api.web.voices import VoiceChoice, check_speakable, resolve_voice

#: Chat's `audio.format` names mapped to the speech encoder's.
_FORMATS = {"pcm16": "pcm"}


class Speaker:
    """Speaks chat answers for one request; the voice is checked when the request arrives."""

    def __init__(self, state: AppState, audio: dict[str, Any], environ: dict[str, Any]) -> None:
        self._state = state
        self._pipeline: Pipeline = state.pipeline
        self._environ = environ
        self.fmt = _FORMATS.get(audio["format"], audio["format"])
        try:
            self._choice: VoiceChoice = resolve_voice("tts-1", audio["voice"], state.voices, state.settings)
        except ApiError as exc:
            exc.param = "audio.voice" if exc.param == "voice" else exc.param
            raise

    @classmethod
    def for_request(cls, state: AppState, params: dict[str, Any], environ: dict[str, Any]) -> Speaker | None:
        """A speaker when the request asks for audio output, else None."""
        if "audio" not in params["modalities"]:
            return None
        return cls(state, params["audio"], environ)

    def speak(self, text: str) -> Iterator[str]:
        """Base64 pieces of `text` spoken and encoded, as each sentence is ready (join them for all)."""
        if not text.strip():
            return
        catalog = self._state.voices
        with self._pipeline.admit(self._environ) as job:
            choice = check_speakable(text, self._choice, catalog)
            job.start_speaking(len(text) / CHARS_PER_AUDIO_SECOND)
            voice = catalog.get(choice.location.name)
            chunks = job.guard(spoken_chunks(voice, text, SpeechOptions()))
            yield from base64_pieces(encode_all((c.samples for c in chunks), self.fmt, voice.sample_rate))

    def speak_all(self, text: str) -> str:
        """The whole answer as one base64 string."""
        return "".join(self.speak(text))
