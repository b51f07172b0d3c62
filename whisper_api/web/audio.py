"""`/v1/audio/transcriptions` and `/v1/audio/translations`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from whisper_api.engine.types import Task, TranscriptionOptions, VadSettings, collect
from whisper_api.errors import InvalidRequestError
from whisper_api.web.apidoc import FORM, JSON, SSE, TEXT, F, documented
from whisper_api.web.diarization import diarizing_call, known_speakers, split_channels, wants_diarization
from whisper_api.web.diarized import render_diarized
from whisper_api.web.formatting import render_transcript
from whisper_api.web.pipeline import ModelChoice, Pipeline
from whisper_api.web.responses import json_response
from whisper_api.web.schemas import (
    AudioRequestSchema,
    TranscriptionDiarizedSchema,
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
                    JSON: [TranscriptionJsonSchema, TranscriptionVerboseSchema, TranscriptionDiarizedSchema],
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
    settings = pipeline.settings
    with pipeline.admit(request.environ) as job:  # 429 before the body is read
        params: dict[str, Any] = schema.load(form_to_payload(request.form))
        model = job.choose_model(
            params["model"], task=task, language=params["language"]
        )  # before any decoding
        options = _options(pipeline, params, task, model)
        data = read_upload(request)
        audio = job.decode(data)
        run = None
        if wants_diarization(params):
            channels = split_channels(data, settings)
            run = diarizing_call(channels, known_speakers(params, settings), settings)
        del data
        info, segments = job.transcribe(audio, options, run=run)
        if params["stream"]:
            stream = job.stream(segments)  # the response owns the slot from here on
            return stream_transcript(
                info,
                stream,
                counter=job.token_counter(),
                prompt=params["prompt"],
                logprobs=options.logprobs,
                languages=wants_languages(params),
            )
        transcript = collect(info, segments)
    if params["response_format"] == "diarized_json":
        return json_response(render_diarized(transcript))
    return render_transcript(
        transcript,
        response_format=params["response_format"],
        task=task,
        granularities=params["timestamp_granularities"],
        logprobs=options.logprobs,
        languages=wants_languages(params),
    )


def _options(
    pipeline: Pipeline, params: dict[str, Any], task: Task, model: ModelChoice
) -> TranscriptionOptions:
    languages = tuple(params["languages"])
    if not model.multilingual and languages:
        if "en" not in languages:
            raise InvalidRequestError(
                f"Model '{model.name}' is English-only; languages {list(languages)} need a "
                "multilingual model.",
                param="languages",
            )
        languages = ("en",)
    # Word alignment costs time; OpenAI only returns words in verbose_json, so skip it otherwise.
    wants_words = "word" in params["timestamp_granularities"] and params["response_format"] == "verbose_json"
    chunking = params["chunking_strategy"]
    # `auto` or server_vad: OpenAI cuts the audio on speech, so the VAD is on.
    vad_filter = True if chunking is not None else params["vad_filter"]
    return pipeline.options(
        task=task,
        language=params["language"],
        prompt=params["prompt"],
        temperature=params["temperature"],
        word_timestamps=wants_words,
        vad_filter=vad_filter,
        languages=languages,
        keywords=tuple(params["keywords"]),
        vad=chunking if isinstance(chunking, VadSettings) else None,
        logprobs=wants_logprobs(params),
        streamed=params["stream"],
    )


def wants_logprobs(params: dict[str, Any]) -> bool:
    """Scoring costs an encoder pass per window: only when asked, and where OpenAI returns them."""
    return "logprobs" in params["include"] and (params["stream"] or params["response_format"] == "json")


def wants_languages(params: dict[str, Any]) -> bool:
    """`languages: [{code}]` is gpt-transcribe's response field; sent to those who use it."""
    return params["model"].strip() == "gpt-transcribe" or bool(params["languages"])
