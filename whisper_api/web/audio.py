"""`/v1/audio/transcriptions` and `/v1/audio/translations`."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, request

from whisper_api.engine.audio import decode_audio
from whisper_api.engine.tokens import token_counter
from whisper_api.engine.types import Task, Transcriber, TranscriptionOptions, VadSettings, collect
from whisper_api.errors import InvalidRequestError, ModelNotFoundError
from whisper_api.web.admission import client_gone
from whisper_api.web.aliases import resolve_model_name
from whisper_api.web.diarization import (
    diarized_transcription,
    known_speakers,
    split_channels,
    wants_diarization,
)
from whisper_api.web.diarized import render_diarized
from whisper_api.web.errors import json_response
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
    try:
        params: dict[str, Any] = schema.load(form_to_payload(request.form))
        data = read_upload(request)
        name = resolve_model_name(params["model"], state.registry.default_name)
        if not state.registry.is_served(name):
            raise ModelNotFoundError(params["model"])
        diarize = wants_diarization(params)
        known = known_speakers(params, settings) if diarize else []
        slot.wait_turn()
        audio = decode_audio(data, max_seconds=settings.max_audio_seconds, timeout=settings.decode_timeout)
        channels = split_channels(data, settings) if diarize else []
        del data
        note_audio_work(name, task, audio.duration)
        slot.set_deadline(settings.timeout_base + audio.duration * settings.timeout_per_audio_second)
        transcriber = state.registry.get(name)
        options = _options(params, task, transcriber, settings.beam_size, settings.vad_filter)
        slot.check()
        if diarize:
            info, segments = diarized_transcription(transcriber, audio, channels, options, known, settings)
        else:
            info, segments = transcriber.transcribe(audio, options)
        del channels
        segments = slot.guard(segments)
        if params["stream"]:
            counter = token_counter(state.registry.locate(name).path)
            response = stream_transcript(
                info,
                segments,
                counter=counter,
                prompt=params["prompt"],
                logprobs=options.logprobs,
                languages=wants_languages(params),
            )
            response.call_on_close(slot.release)  # the stream holds the slot until it ends
            streaming = True
            return response
        transcript = collect(info, segments)
    finally:
        if not streaming:
            slot.release()
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
    languages = tuple(params["languages"])
    if not transcriber.multilingual and languages:
        if "en" not in languages:
            raise InvalidRequestError(
                f"Model '{transcriber.name}' is English-only; languages {list(languages)} need a "
                "multilingual model.",
                param="languages",
            )
        languages = ("en",)
    # Word alignment costs time; OpenAI only returns words in verbose_json, so skip it otherwise.
    wants_words = "word" in params["timestamp_granularities"] and params["response_format"] == "verbose_json"
    chunking = params["chunking_strategy"]
    if chunking is not None:  # `auto` or server_vad: OpenAI chunks on speech, so VAD is on
        vad = True
    elif params["vad_filter"] is not None:
        vad = params["vad_filter"]
    return TranscriptionOptions(
        task=task,
        language=language,
        prompt=params["prompt"],
        temperature=params["temperature"],
        word_timestamps=wants_words,
        vad_filter=vad,
        beam_size=beam_size,
        languages=languages,
        keywords=tuple(params["keywords"]),
        vad=chunking if isinstance(chunking, VadSettings) else None,
        logprobs=wants_logprobs(params),
    )


def wants_logprobs(params: dict[str, Any]) -> bool:
    """Scoring costs an encoder pass per window: only when asked, and where OpenAI returns them."""
    return "logprobs" in params["include"] and (params["stream"] or params["response_format"] == "json")


def wants_languages(params: dict[str, Any]) -> bool:
    """`languages: [{code}]` is gpt-transcribe's response field; sent to those who use it."""
    return params["model"].strip() == "gpt-transcribe" or bool(params["languages"])
