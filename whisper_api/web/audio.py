"""`/v1/audio/transcriptions` and `/v1/audio/translations`."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Blueprint, Response, request

from whisper_api.engine.audio import decode_audio
from whisper_api.engine.registry import ModelLease
from whisper_api.engine.types import Task, Transcriber, TranscriptionOptions, collect
from whisper_api.errors import InvalidRequestError, ModelNotFoundError
from whisper_api.web.admission import client_gone
from whisper_api.web.aliases import resolve_model_name
from whisper_api.web.formatting import render_transcript
from whisper_api.web.observe import note_audio_work
from whisper_api.web.schemas import (
    AudioRequestSchema,
    TranscriptionSchema,
    TranslationSchema,
    form_to_payload,
)
from whisper_api.web.state import get_state
from whisper_api.web.streaming import stream_transcript
from whisper_api.web.uploads import read_upload

logger = logging.getLogger(__name__)

bp = Blueprint("audio", __name__, url_prefix="/v1/audio")


@bp.post("/transcriptions")
def create_transcription() -> Response:
    return _run(TranscriptionSchema(), task="transcribe")


@bp.post("/translations")
def create_translation() -> Response:
    return _run(TranslationSchema(), task="translate")


def _run(schema: AudioRequestSchema, *, task: Task) -> Response:
    state = get_state()
    settings = state.settings
    environ = request.environ
    slot = state.admission.enter(lambda: client_gone(environ))  # 429 before the body is read
    streaming = False
    model: ModelLease | None = None
    try:
        params: dict[str, Any] = schema.load(form_to_payload(request.form))
        data = read_upload(request)
        name = resolve_model_name(params["model"], state.settings)
        if not state.registry.is_served(name):
            raise ModelNotFoundError(params["model"])
        slot.wait_turn()
        audio = decode_audio(data, max_seconds=settings.max_audio_seconds, timeout=settings.decode_timeout)
        del data
        note_audio_work(name, task, audio.duration)
        slot.set_deadline(settings.timeout_base + audio.duration * settings.timeout_per_audio_second)
        model = state.registry.lease(name, timeout=(slot.deadline or time.monotonic()) - time.monotonic())
        transcriber = model.transcriber
        options = _options(params, task, transcriber, settings.beam_size, settings.vad_filter)
        slot.check()
        info, segments = transcriber.transcribe(audio, options)
        segments = slot.guard(segments)
        if params["stream"]:
            counter = transcriber.token_counter
            response = stream_transcript(info, segments, counter=counter, prompt=params["prompt"])
            response.call_on_close(slot.release)  # the stream holds the slot until it ends
            response.call_on_close(model.close)  # and the model
            streaming = True
            return response
        transcript = collect(info, segments)
    finally:
        if not streaming:
            slot.release()
            if model is not None:
                model.close()
    return render_transcript(
        transcript,
        response_format=params["response_format"],
        task=task,
        granularities=params["timestamp_granularities"],
    )


def _options(
    params: dict[str, Any], task: Task, transcriber: Transcriber, beam_size: int, vad: bool
) -> TranscriptionOptions:
    language = params["language"]
    if not transcriber.multilingual:
        if task == "translate":
            raise InvalidRequestError(
                f"Model '{transcriber.name}' is English-only and cannot translate; use a multilingual model.",
                param="model",
            )
        if language not in (None, "en"):
            raise InvalidRequestError(
                f"Model '{transcriber.name}' is English-only; language '{language}' needs a "
                "multilingual model.",
                param="language",
            )
    # Word alignment costs time; OpenAI only returns words in verbose_json, so skip it otherwise.
    wants_words = "word" in params["timestamp_granularities"] and params["response_format"] == "verbose_json"
    return TranscriptionOptions(
        task=task,
        language=language,
        prompt=params["prompt"],
        temperature=params["temperature"],
        word_timestamps=wants_words,
        vad_filter=vad if params["vad_filter"] is None else params["vad_filter"],
        beam_size=beam_size,
    )
