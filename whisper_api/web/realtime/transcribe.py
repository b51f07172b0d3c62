"""Transcribe one committed utterance on the pipeline every HTTP transcription takes (admission,
model checks, audio budget, deadline, engine), with the same metrics and request log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from whisper_api.engine.types import Audio, Segment, Task
from whisper_api.engine.utterance import SpeculationDeclined
from whisper_api.errors import ApiError
from whisper_api.web import metrics
from whisper_api.web.pipeline import Pipeline
from whisper_api.web.request_log import access_logger, format_line

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
    speculative: bool = False  # decoded at a pause in speech, before the turn ended (items.py)
    logprobs: bool = False  # the session's `include` asks for token log-probabilities


def transcribe_utterance(
    utterance: Utterance,
    *,
    pipeline: Pipeline,
    is_gone: Callable[[], bool],
    session_id: str,
    abandoned: Callable[[], bool] = lambda: False,
) -> Iterator[Segment]:
    """The utterance's segments, decoded while a slot of this worker is held (429 rules apply);
    stopped (status 499) when the client leaves or the session `abandoned` a speculative decode
    (one the engine declines to guess at raises SpeculationDeclined, status 204)."""
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
    if utterance.speculative:
        fields["speculative"] = True
    status = 200
    settings = pipeline.settings
    job = pipeline.admit_live(lambda: is_gone() or abandoned())
    try:
        model = job.choose_model(utterance.model, task=utterance.task, language=utterance.language)
        fields["model"] = model.name
        audio = job.take_audio(utterance.audio)
        options = pipeline.options(
            task=utterance.task,
            language=utterance.language if model.multilingual else None,
            prompt=utterance.prompt or None,
            vad_filter=False,  # the stream was already cut at silences
            live=settings.realtime_quick_decode,
            speculative=utterance.speculative,
            logprobs=utterance.logprobs,
        )
        _, segments = job.transcribe(audio, options)
        with closing(segments):  # type: ignore[type-var]
            yield from segments
    except ApiError as exc:
        status = exc.status
        raise
    except SpeculationDeclined:
        status = 204  # a guess with no quick answer: the commit decodes the utterance itself
        raise
    except GeneratorExit:
        status = 499
        raise
    except Exception:
        status = 500
        raise
    finally:
        job.close()
        seconds = time.perf_counter() - started
        metrics.observe_request("/v1/realtime", "WS", status, seconds)
        if status == 200:
            metrics.observe_audio(fields["model"], utterance.task, utterance.audio.duration, seconds)
        fields.update(status=status, processing_ms=round(seconds * 1000, 1))
        if settings.log_format != "off":
            access_logger.info(format_line(fields, settings.log_format))
