"""Realtime translation (`/v1/realtime/translations`): speech in any of Whisper's languages, English
text out. Each utterance (cut by the server's VAD) is answered with `session.input_transcript.delta`
(the source language) and `session.output_transcript.delta` (English). When a text-to-speech
voice is installed (`scripts/setup speech`), the English text is also spoken:
`session.output_audio.delta` (PCM16, 24 kHz mono), synthesised on the same pipeline as
`/v1/audio/speech`; without one the session says `output_modalities: ["text"]`.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib.util
import time
from collections.abc import Callable, Iterator
from typing import Any

from whisper_api.engine.pcm import PcmEncoder
from whisper_api.engine.speech import SpeechOptions
from whisper_api.errors import ApiError, ClientDisconnectedError, InvalidRequestError
from whisper_api.web.realtime import metrics
from whisper_api.web.realtime.channel import NORMAL, Channel, error_event
from whisper_api.web.realtime.config import Generation
from whisper_api.web.realtime.items import ItemTranscriber, Transcribe
from whisper_api.web.realtime.session import RealtimeSession, SessionEndError
from whisper_api.web.realtime.transcribe import Utterance
from whisper_api.web.speech import CHARS_PER_AUDIO_SECOND
from whisper_api.web.state import AppState
from whisper_api.web.voices import resolve_voice

#: Speaks English text as PCM16 24 kHz pieces (None when no voice is installed).
Speak = Callable[[str], Iterator[bytes]]


OUTPUT_RATE = 24_000


def speaker(state: AppState, is_gone: Callable[[], bool]) -> Speak | None:
    """Speaks with the voice OpenAI's `alloy` maps to, through the pipeline; None without a voice."""
    if importlib.util.find_spec("piper") is None or not state.voices.locations():
        return None  # text to speech is optional (requirements-speech.txt)

    def speak(text: str) -> Iterator[bytes]:
        choice = resolve_voice("tts-1", "alloy", state.voices, state.settings)
        voice = state.voices.get(choice.location.name)
        with state.pipeline.admit_live(is_gone) as job:
            job.start_speaking(len(text) / CHARS_PER_AUDIO_SECOND)
            encoder = PcmEncoder(voice.sample_rate, OUTPUT_RATE)
            for chunk in job.guard(voice.synthesize(text, SpeechOptions())):
                yield encoder.encode(chunk.samples)

    return speak


class TranslationItems(ItemTranscriber):
    """Each utterance transcribed (when asked), translated, and spoken (when a voice is installed)."""

    def __init__(self, channel: Channel, transcribe: Transcribe, started: float, speak: Speak | None) -> None:
        super().__init__(channel, transcribe, "ga")
        self.input_transcripts = False
        self.speak = speak
        self._started = started

    def _tasks(self, utterance: Utterance) -> list[Utterance]:
        tasks = [dataclasses.replace(utterance, task="translate")]
        if self.input_transcripts:
            tasks.insert(0, dataclasses.replace(utterance, task="transcribe"))
        return tasks

    def _answer(self, utterance: Utterance) -> None:
        try:
            if self.input_transcripts:
                self._deltas(
                    dataclasses.replace(utterance, task="transcribe"), "session.input_transcript.delta"
                )
            english = self._deltas(
                dataclasses.replace(utterance, task="translate"), "session.output_transcript.delta"
            )
            if self.speak is not None and english.strip():
                self._speak(english)
        except ClientDisconnectedError:
            return
        except ApiError as exc:
            self._channel.send(error_event(exc))
            return
        metrics.COMPLETION_SECONDS.observe(time.perf_counter() - utterance.committed_at)

    def _deltas(self, utterance: Utterance, kind: str) -> str:
        """Send each segment's text as a `kind` delta; the whole text."""
        segments = self._segments(utterance)
        texts: list[str] = []
        try:
            for segment in segments:
                if segment.text.strip():
                    texts.append(segment.text)
                    self._channel.send(
                        {"type": kind, "delta": segment.text, "elapsed_ms": self._elapsed_ms()}
                    )
        finally:
            segments.close()  # type: ignore[attr-defined]
        return "".join(texts)

    def _speak(self, text: str) -> None:
        assert self.speak is not None
        pieces = self.speak(text)
        try:
            for pcm in pieces:
                self._channel.send(
                    {
                        "type": "session.output_audio.delta",
                        "delta": base64.b64encode(pcm).decode(),
                        "format": "pcm16",
                        "sample_rate": OUTPUT_RATE,
                        "channels": 1,
                        "elapsed_ms": self._elapsed_ms(),
                    }
                )
        finally:
            pieces.close()  # type: ignore[attr-defined]

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self._started) * 1000)


class TranslationSession(RealtimeSession):
    """A Realtime session that translates into English; the server decides where utterances end."""

    def __init__(self, *args: Any, requested_model: str, speak: Speak | None, **kwargs: Any) -> None:  # noqa: ANN401
        self._requested_model = requested_model
        self._speak_with = speak
        super().__init__(*args, **kwargs)

    def _item_transcriber(
        self, channel: Channel, transcribe: Transcribe, generation: Generation
    ) -> ItemTranscriber:
        return TranslationItems(channel, transcribe, time.monotonic(), self._speak_with)

    def _announce(self, event: dict[str, Any]) -> None:
        pass  # translation sessions have no buffer or item events

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "session.input_audio_buffer.append":
            self._append(event.get("audio"))
        elif kind == "session.update":
            self._update_translation(event.get("session"))
        elif kind == "session.close":
            self._commit_remaining()
            self._items.close(timeout=self._limits.drain_seconds)
            self._channel.send({"type": "session.closed"})
            raise SessionEndError("client_closed", NORMAL, "")
        else:
            raise InvalidRequestError(
                f"Invalid value: '{kind}'. Translation sessions take session.update, "
                "session.input_audio_buffer.append and session.close.",
                param="type",
                code="invalid_value",
            )

    def _end(self, end: SessionEndError, *, send_error: bool = True) -> None:
        super()._end(end, send_error=send_error and end.outcome != "client_closed")

    def _update_translation(self, session: Any) -> None:  # noqa: ANN401 - raw JSON
        if not isinstance(session, dict):
            raise InvalidRequestError("Missing required parameter: 'session'.", param="session")
        audio = session.get("audio") or {}
        output = audio.get("output") or {}
        language = output.get("language")
        if language not in (None, "en"):
            raise InvalidRequestError(
                f"Invalid value: '{language}'. Whisper translates into English only.",
                param="session.audio.output.language",
                code="invalid_value",
            )
        items = self._items
        assert isinstance(items, TranslationItems)
        if "input" in audio and isinstance(audio["input"], dict) and "transcription" in audio["input"]:
            items.input_transcripts = audio["input"]["transcription"] is not None
        self._send_session("updated")

    def _send_session(self, what: str) -> None:
        items = self._items
        assert isinstance(items, TranslationItems)
        expires_at = int(time.time() + self._limits.max_session_seconds - (time.monotonic() - self._started))
        transcription = {"model": self._config.model} if items.input_transcripts else None
        self._channel.send(
            {
                "type": f"session.{what}",
                "session": {
                    "id": self.id,
                    "type": "translation",
                    "model": self._requested_model,
                    "expires_at": expires_at,
                    "output_modalities": ["text", "audio"] if items.speak else ["text"],
                    "audio": {
                        "input": {"transcription": transcription, "noise_reduction": None},
                        "output": {"language": "en"},
                    },
                },
            }
        )
