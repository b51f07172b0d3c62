"""The one road every transcription takes, whichever endpoint it came through.

In order: admission (429 before the body is read), checks that need no audio (model served,
English-only model asked to translate or for another language), decoding under its timeout and
the request's audio budget, the audio-scaled deadline, the engine call, and the slot's release.
A `Job` owns its admission slot from `Pipeline.admit` until it is closed; `Job.stream` moves the
slot into a `SegmentStream`, which then owns it until the stream is closed (by the response).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Generic, TypeVar

from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.registry import ModelLease, ModelRegistry
from whisper_api.engine.tokens import TokenCounter
from whisper_api.engine.types import (
    Audio,
    Segment,
    Task,
    Transcriber,
    TranscriptionInfo,
    TranscriptionOptions,
)
from whisper_api.errors import ApiError, AudioTooLongError, InvalidRequestError, ModelNotFoundError
from whisper_api.web.admission import Admission, Slot, client_gone
from whisper_api.web.aliases import resolve_model_name
from whisper_api.web.request_log import note_audio_work
from whisper_api.web.responses import close_iterator

logger = logging.getLogger(__name__)

T = TypeVar("T")
#: How a view may call the engine instead of `transcriber.transcribe(audio, options)`: it gets a
#: transcriber whose segments stop at the deadline or when the client leaves, and that check
#: itself, to call between steps of its own.
EngineCall = Callable[
    [Transcriber, Audio, TranscriptionOptions, Callable[[], None]],
    tuple[TranscriptionInfo, Iterator[Segment]],
]


class _GuardedTranscriber:
    """A transcriber whose every run is checked by the request's slot between segments."""

    def __init__(self, transcriber: Transcriber, slot: Slot) -> None:
        self.name = transcriber.name
        self.multilingual = transcriber.multilingual
        self._transcriber = transcriber
        self._slot = slot

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        self._slot.check()
        info, segments = self._transcriber.transcribe(audio, options)
        return info, self._slot.guard(segments)


@dataclass(frozen=True)
class ModelChoice:
    """The local model a request will use, decided before any audio is read."""

    name: str
    multilingual: bool


class Pipeline:
    """Admits requests and hands out `Job`s; one per app, shared by every endpoint."""

    def __init__(self, settings: Settings, registry: ModelRegistry, admission: Admission) -> None:
        self.settings = settings
        self.registry = registry
        self.admission = admission

    def admit(self, environ: dict[str, Any]) -> Job:
        """A place in this worker, or ServerBusyError (429 + Retry-After) before the body is read."""
        slot = self.admission.enter(lambda: client_gone(environ))
        return Job(self, slot)

    def admit_live(self, is_gone: Callable[[], bool]) -> Job:
        """As `admit`, for work outside an HTTP request (a Realtime session's utterance)."""
        return Job(self, self.admission.enter(is_gone))

    def token_counter(self, model: str) -> TokenCounter | None:
        """`model`'s tokenizer (a served local name), for OpenAI's token usage."""
        return self.registry.token_counter(model)

    def options(self, **fields: Any) -> TranscriptionOptions:
        """Request fields over the server's decoding defaults (beam size, VAD)."""
        base = TranscriptionOptions(beam_size=self.settings.beam_size, vad_filter=self.settings.vad_filter)
        given = {key: value for key, value in fields.items() if value is not None}
        return replace(base, **given)


class Job:
    """One admitted request. It holds its slot until `close` (idempotent) or `stream` moves it."""

    def __init__(self, pipeline: Pipeline, slot: Slot) -> None:
        self._pipeline = pipeline
        self._slot = slot  # waited on, checked and timed by every step below
        self._lease: Slot | None = slot  # who must release it: this job, until `stream` moves it
        self._model_lease: ModelLease | None = None  # the loaded model, busy until the job or stream ends
        self._streaming = False
        self._audio_seconds = 0.0
        self._model: ModelChoice | None = None
        self._task: Task = "transcribe"

    # --- ownership --------------------------------------------------------------------------------

    def __enter__(self) -> Job:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Give the slot and the model back (a no-op once released or moved into a stream)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            lease.release()
        if not self._streaming:
            self._release_model()

    def _release_model(self) -> None:
        model, self._model_lease = self._model_lease, None
        if model is not None:
            model.close()

    # --- checks that need no audio ----------------------------------------------------------------

    def choose_model(
        self, requested: str, *, task: Task = "transcribe", language: str | None = None
    ) -> ModelChoice:
        """The served model behind `requested` (aliases resolved), refusing what it cannot do."""
        registry = self._pipeline.registry
        name = resolve_model_name(requested, self._pipeline.settings)
        if not registry.is_served(name):
            raise ModelNotFoundError(requested)
        multilingual = registry.locate(name).multilingual
        if not multilingual:
            if task == "translate":
                raise InvalidRequestError(
                    f"Model '{name}' is English-only and cannot translate; use a multilingual model.",
                    param="model",
                )
            if language not in (None, "en"):
                raise InvalidRequestError(
                    f"Model '{name}' is English-only; language '{language}' needs a multilingual model.",
                    param="language",
                )
        self._model = ModelChoice(name, multilingual)
        self._task = task
        return self._model

    # --- audio ---------------------------------------------------------------------------------------

    def decode(self, data: str | bytes, *, param: str = "file") -> Audio:
        """Wait for a running place, then decode under the timeout and what is left of the budget.

        Every part of one request (a chat's several `input_audio` parts) shares one budget of
        WHISPER_API_MAX_AUDIO_SECONDS, so splitting audio into parts buys nothing.
        """
        settings = self._pipeline.settings
        slot = self._slot
        slot.wait_turn()
        left = settings.max_audio_seconds - self._audio_seconds
        if left <= 0:
            raise _with_param(AudioTooLongError(settings.max_audio_seconds), param)
        try:
            audio = decode_audio(
                data,
                max_seconds=left,
                timeout=settings.decode_timeout,
                keep_seconds=settings.decoded_audio_seconds,
            )
        except AudioTooLongError as exc:
            raise _with_param(AudioTooLongError(settings.max_audio_seconds), param) from exc
        except InvalidRequestError as exc:
            raise _with_param(exc, param) from exc
        self._audio_seconds += audio.duration
        slot.set_deadline(settings.timeout_base + self._audio_seconds * settings.timeout_per_audio_second)
        if self._model is not None:
            note_audio_work(self._model.name, self._task, self._audio_seconds)
        return audio

    def take_audio(self, audio: Audio) -> Audio:
        """As `decode`, for audio that arrived already decoded (a live stream's utterance)."""
        settings = self._pipeline.settings
        self._slot.wait_turn()
        if self._audio_seconds + audio.duration > settings.max_audio_seconds:
            raise AudioTooLongError(settings.max_audio_seconds)
        self._audio_seconds += audio.duration
        self._slot.set_deadline(
            settings.timeout_base + self._audio_seconds * settings.timeout_per_audio_second
        )
        return audio

    # --- work that makes audio instead of reading it (text to speech) --------------------------------

    def start_speaking(self, audio_seconds: float) -> None:
        """Wait for a running place for synthesis; its deadline scales with the audio it will make."""
        settings = self._pipeline.settings
        self._slot.wait_turn()
        self._slot.set_deadline(settings.timeout_base + audio_seconds * settings.timeout_per_audio_second)

    def guard(self, items: Iterator[T]) -> Iterator[T]:
        """`items`, stopped when the deadline passes or the client leaves."""
        return self._slot.guard(items)

    # --- the engine ----------------------------------------------------------------------------------

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions, *, run: EngineCall | None = None
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        """Start the engine on `audio`; the segments stop when the deadline passes or the client leaves.

        `run` replaces the plain engine call (diarization transcribes each channel, then labels).
        """
        model = self._require_model()
        slot = self._slot
        if self._model_lease is None:  # a first request for a model waits for its load, up to the deadline
            left = None if slot.deadline is None else slot.deadline - time.monotonic()
            self._model_lease = self._pipeline.registry.lease(model.name, timeout=left)
        transcriber = self._model_lease.transcriber
        slot.check()
        if run is None:
            info, segments = transcriber.transcribe(audio, options)
        else:
            info, segments = run(_GuardedTranscriber(transcriber, slot), audio, options, slot.check)
        return info, slot.guard(segments)

    def token_counter(self) -> TokenCounter | None:
        """The chosen model's tokenizer, for OpenAI's token usage."""
        return self._pipeline.token_counter(self._require_model().name)

    def stream(self, items: Iterator[T]) -> SegmentStream[T]:
        """Move this job's slot into a stream of `items`: from now on, closing the stream frees it."""
        lease, self._lease = self._lease, None
        if lease is None:
            raise RuntimeError("this job's slot was already released or handed over")
        self._streaming = True
        return SegmentStream(items, lease, on_close=self._release_model)

    def _require_model(self) -> ModelChoice:
        if self._model is None:
            raise RuntimeError("choose_model must come before the engine is called")
        return self._model


class SegmentStream(Generic[T]):
    """Items decoded lazily while this object holds the request's slot; `close` frees both."""

    def __init__(self, items: Iterator[T], slot: Slot, on_close: Callable[[], None] = lambda: None) -> None:
        self._items = items
        self._slot: Slot | None = slot
        self._on_close = on_close

    def __iter__(self) -> Iterator[T]:
        return self._items

    def close(self) -> None:
        close_iterator(self._items)  # stops the engine's decoding loop
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()
            self._on_close()  # the model the stream was decoding with


def _with_param(exc: ApiError, param: str) -> ApiError:
    exc.param = param
    return exc
