"""`/v1/audio/transcriptions` and `/v1/audio/translations`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from whisper_api.engine.types import Task, TranscriptionOptions, collect
from whisper_api.web.apidoc import FORM, JSON, SSE, TEXT, F, documented
from whisper_api.web.formatting import render_transcript
from whisper_api.web.pipeline import Pipeline
from whisper_api.web.schemas import (
    AudioRequestSchema,
    TranscriptionJsonSchema,
    TranscriptionSchema,
    TranscriptionVerboseSchema,
    TranscriptStreamEventSchema,
    TranslationSchema,
    form_schema,
    form_to_payload,
)
from whisper_api.web.state import get_state
from whisper_api.web.streaming import stream_transcript
from whisper_api.web.uploads import read_upload

logger = logging.getLogger(__name__)

bp = Blueprint("audio", __name__, url_prefix="/v1/audio")


def _audio_doc(summary: str, schema: type[AudioRequestSchema]) -> Callable[[F], F]:
    return documented(
        summary,
        body=form_schema(schema),
        body_type=FORM,
        responses={
            200: (
                "The transcript in the requested `response_format`; server-sent events when `stream=true`",
                {
                    JSON: [TranscriptionJsonSchema, TranscriptionVerboseSchema],
                    TEXT: str,
                    SSE: TranscriptStreamEventSchema,
                },
            )
        },
        errors=(400, 404, 413, 429, 503, 504),
    )


@bp.post("/transcriptions")
@_audio_doc("Transcribe audio", TranscriptionSchema)
def create_transcription() -> Response:
    return _run(TranscriptionSchema(), task="transcribe")


@bp.post("/translations")
@_audio_doc("Translate audio into English", TranslationSchema)
def create_translation() -> Response:
    return _run(TranslationSchema(), task="translate")


def _run(schema: AudioRequestSchema, *, task: Task) -> Response:
    pipeline = get_state().pipeline
    with pipeline.admit(request.environ) as job:  # 429 before the body is read
        params: dict[str, Any] = schema.load(form_to_payload(request.form))
        job.choose_model(params["model"], task=task, language=params["language"])  # before any decoding
        audio = job.decode(read_upload(request))
        info, segments = job.transcribe(audio, _options(pipeline, params, task))
        if params["stream"]:
            stream = job.stream(segments)  # the response owns the slot from here on
            return stream_transcript(info, stream, counter=job.token_counter(), prompt=params["prompt"])
        transcript = collect(info, segments)
    return render_transcript(
        transcript,
        response_format=params["response_format"],
        task=task,
        granularities=params["timestamp_granularities"],
    )


def _options(pipeline: Pipeline, params: dict[str, Any], task: Task) -> TranscriptionOptions:
    # Word alignment costs time; OpenAI only returns words in verbose_json, so skip it otherwise.
    wants_words = "word" in params["timestamp_granularities"] and params["response_format"] == "verbose_json"
    return pipeline.options(
        task=task,
        language=params["language"],
        prompt=params["prompt"],
        temperature=params["temperature"],
        word_timestamps=wants_words,
        vad_filter=params["vad_filter"],
    )
