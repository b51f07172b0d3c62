"""One Realtime transcription session: client events in, OpenAI's server events out.

A client mistake (bad JSON, unknown event, bad base64, unknown model, unsupported format, empty
commit) gets an `error` event and the session goes on. Limits (idle time, session length, audio
held without a commit) end it with an `error` event and a close code; so does the server's shutdown,
after the audio already received has been transcribed.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simple_websocket import ConnectionClosed

from whisper_api.engine.pcm import PcmDecoder
from whisper_api.engine.turns import InputBuffer, SpeechPaused, SpeechResumed, SpeechStarted, SpeechStopped
from whisper_api.engine.types import Audio, Task
from whisper_api.errors import ApiError, InvalidRequestError
from whisper_api.web.realtime import metrics
from whisper_api.web.realtime.channel import GOING_AWAY, NORMAL, POLICY, Channel, error_event, new_id
from whisper_api.web.realtime.config import LOGPROBS, Generation, SessionConfig, apply_update, render
from whisper_api.web.realtime.items import ItemTranscriber, Transcribe, user_item
from whisper_api.web.realtime.transcribe import Utterance

logger = logging.getLogger(__name__)

#: OpenAI refuses to commit less than this much audio.
MIN_COMMIT_SECONDS = 0.1
_POLL_SECONDS = 0.25
_UPDATE_TYPES = ("session.update", "transcription_session.update")


@dataclass(frozen=True)
class Limits:
    """What one session may use (see the WHISPER_API_REALTIME_* settings)."""

    idle_seconds: float
    max_session_seconds: float
    max_buffer_seconds: float
    drain_seconds: float  # how long a shutdown waits for the last transcripts


class SessionEndError(Exception):
    """The session must close: `code` and `reason` go into the close frame."""

    def __init__(self, outcome: str, code: int, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.code = code
        self.reason = reason


class RealtimeSession:
    """Runs one connection until the client leaves, a limit is reached or the server stops."""

    def __init__(
        self,
        channel: Channel,
        *,
        session_id: str,
        config: SessionConfig,
        generation: Generation,
        limits: Limits,
        transcribe: Transcribe,
        check_model: Callable[[SessionConfig], None],
        draining: threading.Event,
        task: Task = "transcribe",
        speculate: bool = True,
    ) -> None:
        self.id = session_id
        self._channel = channel
        self._config = config
        self._generation = generation
        self._limits = limits
        self._check_model = check_model
        self._draining = draining
        self._task = task
        self._speculate = speculate  # decode at pauses in speech (web/realtime/items.py)
        self._started = time.monotonic()
        self._last_event = self._started
        self._decoder = PcmDecoder(config.input_format)
        self._buffer = InputBuffer(config.turn_detection)
        self._items = self._item_transcriber(channel, transcribe, generation)
        self._item_id: str | None = None  # the utterance being spoken, once speech started
        self._previous_item: str | None = None

    def _item_transcriber(
        self, channel: Channel, transcribe: Transcribe, generation: Generation
    ) -> ItemTranscriber:
        return ItemTranscriber(channel, transcribe, generation)

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> str:
        """Serve the connection; the outcome names how it ended (for metrics)."""
        outcome = "client_closed"
        try:
            self._send_session("created")
            while True:
                self._check_limits()
                frame = self._channel.receive(timeout=_POLL_SECONDS)
                if frame is None:
                    continue
                self._last_event = time.monotonic()
                self._handle_frame(frame)
        except ConnectionClosed:
            pass
        except SessionEndError as end:
            outcome = end.outcome
            self._end(end)
        except Exception:
            outcome = "error"
            logger.exception("realtime session %s failed", self.id)
            self._end(SessionEndError("error", 1011, "internal error"), send_error=False)
        finally:
            self._items.close(timeout=0 if not self._channel.open else self._limits.drain_seconds)
            self._buffer.clear()
        return outcome

    def _end(self, end: SessionEndError, *, send_error: bool = True) -> None:
        if end.outcome == "shutdown":
            self._commit_remaining()
            self._items.close(timeout=self._limits.drain_seconds)
        elif send_error:
            self._error(InvalidRequestError(end.reason, code=end.outcome))
        self._channel.close(end.code, end.reason)

    def _check_limits(self) -> None:
        now = time.monotonic()
        if self._draining.is_set():
            raise SessionEndError("shutdown", GOING_AWAY, "The server is shutting down.")
        if now - self._started > self._limits.max_session_seconds:
            raise SessionEndError(
                "max_duration",
                NORMAL,
                f"Your session hit the maximum duration of {self._limits.max_session_seconds:.0f} seconds.",
            )
        if self._items.busy:
            self._last_event = now  # waiting for our transcripts is not idling
        elif now - self._last_event > self._limits.idle_seconds:
            raise SessionEndError(
                "idle_timeout", NORMAL, f"The session was idle for {self._limits.idle_seconds:.0f} seconds."
            )

    # --- client events ------------------------------------------------------------------------------

    def _handle_frame(self, frame: str | bytes) -> None:
        client_event_id = None
        try:
            if isinstance(frame, bytes):
                raise InvalidRequestError(
                    "Binary frames are not supported: send JSON events as text.", code="invalid_event"
                )
            try:
                event = json.loads(frame)
            except ValueError:
                raise InvalidRequestError(
                    "The server could not parse the event: it is not valid JSON.", code="invalid_json"
                ) from None
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise InvalidRequestError(
                    "Every event must be a JSON object with a string 'type'.",
                    param="type",
                    code="invalid_event",
                )
            client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
            self._dispatch(event)
        except SessionEndError:
            raise
        except ApiError as exc:
            self._error(exc, client_event_id)

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "input_audio_buffer.append":
            self._append(event.get("audio"))
        elif kind == "input_audio_buffer.commit":
            self._commit_by_client()
        elif kind == "input_audio_buffer.clear":
            self._buffer.clear()
            self._items.discard(self._item_id)
            self._item_id = None
            self._channel.send({"type": "input_audio_buffer.cleared"})
        elif kind in _UPDATE_TYPES:
            self._update(event)
        else:
            raise InvalidRequestError(
                f"Invalid value: '{kind}'. This server takes session.update, transcription_session.update, "
                "input_audio_buffer.append, input_audio_buffer.commit and input_audio_buffer.clear.",
                param="type",
                code="invalid_value",
            )

    def _update(self, event: dict[str, Any]) -> None:
        config = apply_update(self._config, event)
        self._check_model(config)
        if config.input_format != self._config.input_format:
            self._decoder = PcmDecoder(config.input_format)
        if config.turn_detection != self._config.turn_detection:
            self._buffer.configure(config.turn_detection)
        self._items.discard(self._item_id)  # decoded with the settings before this update
        self._config = config
        self._generation = "ga" if event["type"] == "session.update" else "beta"
        self._send_session("updated")

    def _append(self, audio: Any) -> None:  # noqa: ANN401 - raw JSON
        if not isinstance(audio, str):
            raise InvalidRequestError(
                "Missing required parameter: 'audio'.", param="audio", code="missing_required_parameter"
            )
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError(
                "Invalid 'audio': the value must be base64-encoded audio.",
                param="audio",
                code="invalid_value",
            ) from None
        samples = self._decoder.decode(data)
        metrics.AUDIO_SECONDS.inc(len(data) / self._config.input_format.bytes_per_second)
        for turn in self._buffer.append(samples):
            if isinstance(turn, SpeechStarted):
                self._item_id = new_id("item")
                self._announce({"type": "input_audio_buffer.speech_started", **self._turn_fields(turn)})
            elif isinstance(turn, SpeechStopped):
                self._item_id = self._item_id or new_id("item")
                self._announce({"type": "input_audio_buffer.speech_stopped", **self._turn_fields(turn)})
                self._commit(self._item_id, turn.audio)
            elif isinstance(turn, SpeechPaused) and self._speculate and self._item_id is not None:
                self._items.speculate(self._utterance(self._item_id, turn.audio))
            elif isinstance(turn, SpeechResumed):
                self._items.discard(self._item_id)
        if self._buffer.seconds > self._limits.max_buffer_seconds:
            if self._buffer.turn_detection is not None:
                self._commit(self._item_id or new_id("item"), self._buffer.commit())  # a long monologue
            else:
                raise SessionEndError(
                    "input_audio_buffer_too_large",
                    POLICY,
                    f"The input audio buffer holds more than {self._limits.max_buffer_seconds:.0f} "
                    "seconds of audio: commit it more often.",
                )

    def _turn_fields(self, turn: SpeechStarted | SpeechStopped) -> dict[str, Any]:
        if isinstance(turn, SpeechStarted):
            return {"audio_start_ms": turn.audio_start_ms, "item_id": self._item_id}
        return {"audio_end_ms": turn.audio_end_ms, "item_id": self._item_id}

    def _announce(self, event: dict[str, Any]) -> None:
        """Send a buffer or item event (a translation session has none of these)."""
        self._channel.send(event)

    def _commit_by_client(self) -> None:
        if self._buffer.seconds < MIN_COMMIT_SECONDS:
            raise InvalidRequestError(
                "Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, "
                f"but buffer only has {self._buffer.seconds * 1000:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        self._commit(self._item_id or new_id("item"), self._buffer.commit())

    def _commit_remaining(self) -> None:
        if self._buffer.seconds >= MIN_COMMIT_SECONDS and self._channel.open:
            self._commit(self._item_id or new_id("item"), self._buffer.commit())

    def _commit(self, item_id: str, audio: Audio) -> None:
        committed_at = time.perf_counter()
        self._item_id = None
        previous, self._previous_item = self._previous_item, item_id
        self._announce(
            {"type": "input_audio_buffer.committed", "item_id": item_id, "previous_item_id": previous}
        )
        kind = "conversation.item.added" if self._generation == "ga" else "conversation.item.created"
        self._announce(
            {"type": kind, "previous_item_id": previous, "item": user_item(item_id, None, done=False)}
        )
        self._items.submit(self._utterance(item_id, audio, committed_at))

    def _utterance(self, item_id: str, audio: Audio, committed_at: float = 0.0) -> Utterance:
        config = self._config
        return Utterance(
            item_id=item_id,
            audio=audio,
            model=config.model,
            task=self._task,
            language=config.language,
            prompt=config.prompt,
            committed_at=committed_at,
            logprobs=LOGPROBS in config.include,
        )

    # --- server events ------------------------------------------------------------------------------

    def _send_session(self, what: str) -> None:
        prefix = "session" if self._generation == "ga" else "transcription_session"
        expires_at = int(time.time() + self._limits.max_session_seconds - (time.monotonic() - self._started))
        self._channel.send(
            {
                "type": f"{prefix}.{what}",
                "session": render(self._config, self._generation, self.id, expires_at),
            }
        )

    def _error(self, exc: ApiError, client_event_id: str | None = None) -> None:
        self._channel.send(error_event(exc, client_event_id))
