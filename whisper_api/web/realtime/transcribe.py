"""Transcribe one committed utterance through the same admission, deadline, metrics and request log
as an HTTP transcription.

This is the seam to `whisper_api.web.pipeline` (issue 10): when the pipeline takes decoded audio,
`transcribe_utterance` becomes a call to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from whisper_api.config import Settings
from whisper_api.engine.registry import ModelRegistry
from whisper_api.engine.types import Audio, Segment, Task, TranscriptionOptions
from whisper_api.errors import ApiError, InvalidRequestError, ModelNotFoundError
from whisper_api.web import metrics
from whisper_api.web.admission import Admission
from whisper_api.web.aliases import resolve_model_name
from whisper_api.web.observe import access_logger, format_line

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One committed piece of a live stream, and how to transcribe it."""

    item_id: str
    audio: Audio
    model: str
    task: Task = "transcribe"
    language: str | None = None
    prompt: str | None = None
    committed_at: float = 0.0  # time.perf_counter() when speech ended or the client committed


def check_model(registry: ModelRegistry, requested: str, *, task: Task, language: str | None) -> str:
    """The served model behind `requested`, or the error a session update gets (before any audio)."""
    name = resolve_model_name(requested, registry.default_name)
    if not registry.is_served(name):
        raise ModelNotFoundError(requested)
    if not registry.locate(name).multilingual:
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
    return name


def transcribe_utterance(
    utterance: Utterance,
    *,
    settings: Settings,
    registry: ModelRegistry,
    admission: Admission,
    is_gone: Callable[[], bool],
    session_id: str,
) -> Iterator[Segment]:
    """The utterance's segments, decoded while a slot of this worker is held (429 rules apply)."""
    started = time.perf_counter()
    fields: dict[str, Any] = {
        "request_id": utterance.item_id,
        "method": "WS",
        "path": "/v1/realtime",
        "endpoint": "/v1/realtime",
        "session_id": session_id,
        "model": utterance.model,
        "task": utterance.task,
        "audio_seconds": round(utterance.audio.duration, 3),
    }
    status = 200
    slot = admission.enter(is_gone)
    try:
        name = check_model(registry, utterance.model, task=utterance.task, language=utterance.language)
        fields["model"] = name
        slot.wait_turn()
        slot.set_deadline(
            settings.timeout_base + utterance.audio.duration * settings.timeout_per_audio_second
        )
        transcriber = registry.get(name)
        options = TranscriptionOptions(
            task=utterance.task,
            language=utterance.language if transcriber.multilingual else None,
            prompt=utterance.prompt or None,
            beam_size=settings.beam_size,
            vad_filter=False,  # the stream was already cut at silences
        )
        slot.check()
        _, segments = transcriber.transcribe(utterance.audio, options)
        yield from slot.guard(segments)
    except ApiError as exc:
        status = exc.status
        raise
    except GeneratorExit:
        status = 499
        raise
    except Exception:
        status = 500
        raise
    finally:
        slot.release()
        seconds = time.perf_counter() - started
        metrics.observe_request("/v1/realtime", "WS", status, seconds)
        if status == 200:
            metrics.observe_audio(fields["model"], utterance.task, utterance.audio.duration, seconds)
        fields.update(status=status, processing_ms=round(seconds * 1000, 1))
        if settings.log_format != "off":
            access_logger.info(format_line(fields, settings.log_format))
