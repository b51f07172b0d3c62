"""Realtime translation (`/v1/realtime/translations`): speech in any of Whisper's languages, English
text out. Each utterance (cut by the server's VAD) is answered with `session.input_transcript.delta`
(the source language) and `session.output_transcript.delta` (English). Whisper writes no speech, so
no `session.output_audio.delta` is sent: the session says `output_modalities: ["text"]`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from whisper_api.errors import ApiError, ClientDisconnectedError, InvalidRequestError
from whisper_api.web.realtime import metrics
from whisper_api.web.realtime.channel import NORMAL, Channel
from whisper_api.web.realtime.config import Generation
from whisper_api.web.realtime.items import ItemTranscriber, Transcribe
from whisper_api.web.realtime.session import RealtimeSession, SessionEndError
from whisper_api.web.realtime.transcribe import Utterance


class TranslationItems(ItemTranscriber):
    """Each utterance transcribed (when asked), then translated, as text deltas."""

    def __init__(self, channel: Channel, transcribe: Transcribe, started: float) -> None:
        super().__init__(channel, transcribe, "ga")
        self.input_transcripts = False
        self._started = started

    def _answer(self, utterance: Utterance) -> None:
        try:
            if self.input_transcripts:
                self._deltas(
                    dataclasses.replace(utterance, task="transcribe"), "session.input_transcript.delta"
                )
            self._deltas(dataclasses.replace(utterance, task="translate"), "session.output_transcript.delta")
        except ClientDisconnectedError:
            return
        except ApiError as exc:
            self._channel.send(
                {
                    "type": "error",
                    "error": {
                        "type": exc.type,
                        "code": exc.code,
                        "message": exc.message,
                        "param": exc.param,
                        "event_id": None,
                    },
                }
            )
            return
        metrics.COMPLETION_SECONDS.observe(time.perf_counter() - utterance.committed_at)

    def _deltas(self, utterance: Utterance, kind: str) -> None:
        segments = self._transcribe(utterance)
        try:
            for segment in segments:
                if segment.text.strip():
                    elapsed_ms = int((time.monotonic() - self._started) * 1000)
                    self._channel.send({"type": kind, "delta": segment.text, "elapsed_ms": elapsed_ms})
        finally:
            segments.close()  # type: ignore[attr-defined]


class TranslationSession(RealtimeSession):
    """A Realtime session that translates into English; the server decides where utterances end."""

    def __init__(self, *args: Any, requested_model: str, **kwargs: Any) -> None:  # noqa: ANN401
        self._requested_model = requested_model
        super().__init__(*args, **kwargs)

    def _item_transcriber(
        self, channel: Channel, transcribe: Transcribe, generation: Generation
    ) -> ItemTranscriber:
        return TranslationItems(channel, transcribe, time.monotonic())

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
                    "output_modalities": ["text"],  # no speech output: Whisper writes text only
                    "audio": {
                        "input": {"transcription": transcription, "noise_reduction": None},
                        "output": {"language": "en"},
                    },
                },
            }
        )
