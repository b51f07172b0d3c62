"""Render a transcript in each OpenAI `response_format`."""

from __future__ import annotations

import math
import string
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import srt
import webvtt
from flask import Response

from whisper_api.engine.languages import language_name
from whisper_api.engine.types import Segment, Transcript, TranscriptionInfo, Word
from whisper_api.web.responses import json_response, text_response
from whisper_api.web.schemas import TranscriptionJsonSchema, TranscriptionVerboseSchema

_JSON = TranscriptionJsonSchema()
_VERBOSE = TranscriptionVerboseSchema()
_WORD_EDGES = string.whitespace + string.punctuation + "“”‘’«»¿¡…。，、！？：；「」『』（）"


def usage(duration: float) -> dict[str, Any]:
    """OpenAI bills whisper by the started second."""
    return {"type": "duration", "seconds": math.ceil(duration)}


def clean_word(word: str) -> str:
    """OpenAI's words carry no leading space and no attached punctuation (`" Americans,"`)."""
    return word.strip(_WORD_EDGES)


def render_words(segments: tuple[Segment, ...]) -> list[dict[str, Any]]:
    words: list[Word] = [w for s in segments for w in s.words]
    return [
        {"word": cleaned, "start": w.start, "end": w.end} for w in words if (cleaned := clean_word(w.word))
    ]


def render_segment(segment: Segment) -> dict[str, Any]:
    return {
        "id": segment.id,
        "seek": segment.seek,
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": list(segment.tokens),
        "temperature": segment.temperature,
        "avg_logprob": segment.avg_logprob,
        "compression_ratio": segment.compression_ratio,
        "no_speech_prob": segment.no_speech_prob,
    }


def render_verbose(transcript: Transcript, *, task: str, granularities: list[str]) -> dict[str, Any]:
    language = "english" if task == "translate" else language_name(transcript.info.language)
    body: dict[str, Any] = {
        "task": task,
        "language": language,
        "duration": transcript.info.duration,
        "text": transcript.text,
    }
    if not granularities or "segment" in granularities:
        body["segments"] = [render_segment(s) for s in transcript.segments]
    if "word" in granularities:
        body["words"] = render_words(transcript.segments)
    body["usage"] = usage(transcript.info.duration)
    return _VERBOSE.dump(body)


def render_srt(segments: tuple[Segment, ...]) -> str:
    return srt.compose(
        [
            srt.Subtitle(
                index=i,
                start=timedelta(seconds=s.start),
                end=timedelta(seconds=s.end),
                content=s.text.strip(),
            )
            for i, s in enumerate(segments, start=1)
            if s.text.strip()
        ],
        reindex=True,
    )


def _vtt_timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def render_vtt(segments: tuple[Segment, ...]) -> str:
    captions = [
        webvtt.Caption(start=_vtt_timestamp(s.start), end=_vtt_timestamp(s.end), text=s.text.strip())
        for s in segments
        if s.text.strip()
    ]
    return webvtt.WebVTT(captions=captions).content


def render_logprobs(segments: Iterable[Segment]) -> list[dict[str, Any]]:
    """OpenAI's `logprobs: [{token, logprob, bytes}]` for the tokens of these segments."""
    return [
        {"token": lp.token, "logprob": lp.logprob, "bytes": list(lp.bytes)}
        for s in segments
        for lp in s.logprobs
    ]


def render_languages(info: TranscriptionInfo, segments: Iterable[Segment]) -> list[dict[str, str]]:
    """gpt-transcribe's `languages: [{code}]`: the languages the transcript was decoded in, in the
    order they first came (a window decoded in its own detected language names its own)."""
    codes = [s.language or info.language for s in segments if s.text.strip()] or [info.language]
    return [{"code": code} for code in dict.fromkeys(codes) if code]


def render_transcript(
    transcript: Transcript,
    *,
    response_format: str,
    task: str,
    granularities: list[str],
    logprobs: bool = False,
    languages: bool = False,
) -> Response:
    """The HTTP response for a finished transcript in the requested format."""
    if response_format == "text":
        return text_response(transcript.text + "\n")
    if response_format == "srt":
        return text_response(render_srt(transcript.segments))
    if response_format == "vtt":
        return text_response(render_vtt(transcript.segments))
    if response_format == "verbose_json":
        return json_response(render_verbose(transcript, task=task, granularities=granularities))
    body: dict[str, Any] = {"text": transcript.text, "usage": usage(transcript.info.duration)}
    if logprobs:
        body["logprobs"] = render_logprobs(transcript.segments)
    if languages:
        body["languages"] = render_languages(transcript.info, transcript.segments)
    return json_response(_JSON.dump(body))
