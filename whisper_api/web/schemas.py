"""Marshmallow schemas of `/v1/audio/*`: form fields in, and the JSON shapes the transcript goes out in."""

from __future__ import annotations

import json
import math
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate
from werkzeug.datastructures import MultiDict

from whisper_api.engine.languages import normalise_language
from whisper_api.engine.types import VadSettings

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
#: Formats OpenAI defines a streamed shape for (`diarized_json` adds segment events).
STREAMED_FORMATS = ("json", "text", "diarized_json")
GRANULARITIES = ("word", "segment")
INCLUDES = ("logprobs",)
MAX_KEYWORDS = 100
MAX_KNOWN_SPEAKERS = 4
#: Fields the SDKs send as `name[]` parts (curl users send the bare name).
LIST_FIELDS = frozenset({"timestamp_granularities", "include", "known_speaker_names",
                         "known_speaker_references", "languages", "keywords"})  # fmt: skip


def form_to_payload(form: MultiDict[str, str]) -> dict[str, Any]:
    """Flatten a multipart form the way OpenAI clients encode it.

    `x[]` and `x` both fill list fields; only the bare `x` spelling curl users type is split on
    commas (`-F include=logprobs,foo`): an SDK's `x[]` value may itself hold commas (a data URL,
    the keyword "New York, NY"). `a[b]=c` becomes `{"a": {"b": "c"}}`; empty strings mean "not
    set" (node sends `language=`).
    """
    payload: dict[str, Any] = {}
    for key in form:
        if not isinstance(key, str):  # a part whose name Werkzeug could not parse
            continue
        values = [v for v in form.getlist(key) if v.strip()]
        if not values:
            continue
        bracketed = key.endswith("[]")
        name = key[:-2] if bracketed else key
        if name in LIST_FIELDS:
            items = payload.setdefault(name, [])
            if isinstance(items, list):
                parts = values if bracketed else [p for v in values for p in v.split(",")]
                items.extend(p.strip() for p in parts if p.strip())
        elif "[" in name and name.endswith("]"):
            outer, inner = name[:-1].split("[", 1)
            nested = payload.setdefault(outer, {})
            if isinstance(nested, dict):
                nested[inner] = values[-1]
        else:
            payload[name] = values[-1]
    return payload


class AudioRequestSchema(Schema):
    """Fields shared by `/v1/audio/transcriptions` and `/v1/audio/translations`."""

    class Meta:
        unknown = EXCLUDE  # newer OpenAI fields must not break a request

    model = fields.String(required=True, validate=validate.Length(min=1, max=256))
    prompt = fields.String(load_default=None)
    response_format = fields.String(
        load_default="json",
        validate=validate.OneOf(RESPONSE_FORMATS, error="must be one of: {choices}."),
    )
    temperature = fields.Float(
        load_default=0.0,
        allow_nan=False,
        validate=validate.Range(min=0.0, max=1.0, error="must be between 0 and 1."),
    )
    language = fields.String(load_default=None, validate=validate.Length(max=64))
    stream = fields.Boolean(load_default=False)
    timestamp_granularities = fields.List(
        fields.String(validate=validate.OneOf(GRANULARITIES, error="must be one of: {choices}.")),
        load_default=list,
    )
    include = fields.List(
        fields.String(validate=validate.OneOf(INCLUDES, error="must be one of: {choices}.")),
        load_default=list,
    )
    chunking_strategy = fields.Raw(load_default=None)
    languages = fields.List(fields.String(validate=validate.Length(min=1, max=64)), load_default=list)
    keywords = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        load_default=list,
        validate=validate.Length(max=MAX_KEYWORDS, error="at most {max} keywords."),
    )
    known_speaker_names = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        load_default=list,
        validate=validate.Length(max=MAX_KNOWN_SPEAKERS, error="at most {max} known speakers."),
    )
    known_speaker_references = fields.List(
        fields.String(),
        load_default=list,
        validate=validate.Length(max=MAX_KNOWN_SPEAKERS, error="at most {max} known speakers."),
    )
    # Extension (not in OpenAI's API): skip silence with Silero VAD for this request.
    vad_filter = fields.Boolean(load_default=None)

    @post_load
    def normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("language"):
            code = normalise_language(data["language"])
            if code is None:
                raise ValidationError(
                    f"Language '{data['language']}' is not supported; use an ISO-639-1 code "
                    "such as 'en' or 'de'.",
                    field_name="language",
                )
            data["language"] = code
        data["timestamp_granularities"] = list(dict.fromkeys(data["timestamp_granularities"]))
        data["languages"] = _languages(data["languages"])
        data["chunking_strategy"] = parse_chunking_strategy(data["chunking_strategy"])
        if len(data["known_speaker_names"]) != len(data["known_speaker_references"]):
            raise ValidationError(
                "known_speaker_names[] and known_speaker_references[] must have the same length.",
                field_name="known_speaker_names",
            )
        if data["stream"] and data["response_format"] not in STREAMED_FORMATS:
            raise ValidationError(
                f"Streaming is not supported for response_format '{data['response_format']}'; "
                f"use one of: {', '.join(STREAMED_FORMATS)}.",
                field_name="response_format",
            )
        return data


class TranscriptionSchema(AudioRequestSchema):
    """`POST /v1/audio/transcriptions`."""


class TranslationSchema(AudioRequestSchema):
    """`POST /v1/audio/translations`: `language` is only a hint about the spoken language."""

    response_format = fields.String(
        load_default="json",
        validate=validate.OneOf(
            [f for f in RESPONSE_FORMATS if f != "diarized_json"], error="must be one of: {choices}."
        ),
    )


def _languages(values: list[str]) -> list[str]:
    codes: list[str] = []
    for value in values:
        code = normalise_language(value)
        if code is None:
            raise ValidationError(
                f"Language '{value}' is not supported; use ISO-639-1 codes such as 'en' or 'de'.",
                field_name="languages",
            )
        codes.append(code)
    return list(dict.fromkeys(codes))


#: OpenAI's `server_vad` fields: (default, lowest, highest).
_VAD_FIELDS: dict[str, tuple[float, float, float]] = {
    "threshold": (0.5, 0.0, 1.0),
    "prefix_padding_ms": (300, 0, 10_000),
    "silence_duration_ms": (200, 0, 10_000),
}


def parse_chunking_strategy(value: object) -> VadSettings | str | None:
    """`auto`, a `server_vad` object (bracketed form fields or a JSON string), or nothing.

    server_vad maps onto Silero VAD: `threshold` -> speech threshold, `prefix_padding_ms` ->
    padding kept around speech, `silence_duration_ms` -> silence that ends a speech chunk.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        if value.strip() == "auto":
            return "auto"
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict) or value.get("type") != "server_vad":
        raise ValidationError(
            "must be 'auto' or an object with type 'server_vad'.", field_name="chunking_strategy"
        )
    numbers: dict[str, float] = {}
    for name, (default, low, high) in _VAD_FIELDS.items():
        raw = value.get(name, default)
        try:
            number = float(raw)
        except (TypeError, ValueError):
            number = math.nan
        if not low <= number <= high:
            raise ValidationError(
                f"must be between {low} and {high}.", field_name=f"chunking_strategy.{name}"
            )
        numbers[name] = number
    return VadSettings(
        threshold=numbers["threshold"],
        speech_pad_ms=int(numbers["prefix_padding_ms"]),
        min_silence_ms=int(numbers["silence_duration_ms"]),
    )


def form_schema(schema: type[AudioRequestSchema]) -> type[Schema]:
    """The multipart body as clients send it: the view's schema plus the `file` part and `[]` names."""
    extra: dict[str, Any] = {
        "file": fields.Raw(
            required=True,
            metadata={
                "type": "string",
                "format": "binary",
                "description": "The audio: flac, mp3, mp4, mpeg, mpga, m4a, ogg, oga, wav or webm.",
            },
        ),
        "timestamp_granularities": fields.List(
            fields.String(validate=validate.OneOf(GRANULARITIES)),
            data_key="timestamp_granularities[]",
            metadata={"description": "`word` and/or `segment`; needs response_format=verbose_json."},
        ),
        "include": fields.List(
            fields.String(validate=validate.OneOf(INCLUDES)),
            data_key="include[]",
            metadata={"description": "`logprobs`: token log-probabilities in `json` and in streams."},
        ),
        "chunking_strategy": fields.String(
            metadata={
                "description": "`auto`, or `server_vad` with `chunking_strategy[threshold]`, "
                "`[prefix_padding_ms]`, `[silence_duration_ms]` (bracketed fields or a JSON string): "
                "turns Silero VAD on with those values."
            }
        ),
        "languages": fields.List(
            fields.String(),
            data_key="languages[]",
            metadata={"description": "Detect the language among these only; the answer lists it."},
        ),
        "keywords": fields.List(
            fields.String(),
            data_key="keywords[]",
            metadata={"description": "Words to favour while decoding."},
        ),
        "known_speaker_names": fields.List(
            fields.String(),
            data_key="known_speaker_names[]",
            metadata={"description": "Up to 4, for diarized_json."},
        ),
        "known_speaker_references": fields.List(
            fields.String(),
            data_key="known_speaker_references[]",
            metadata={
                "description": "Data URLs (`data:audio/wav;base64,...`) of each known speaker's voice."
            },
        ),
    }
    name = schema.__name__.replace("Schema", "FormSchema")
    return type(name, (schema,), extra)


# --- responses: the formatters dump through these, and /openapi.json shows them --------------------


class DurationUsageSchema(Schema):
    type = fields.String(required=True)
    seconds = fields.Integer(required=True)


class LogprobSchema(Schema):
    token = fields.String(required=True)
    logprob = fields.Float(required=True)
    bytes = fields.List(fields.Integer(), required=True)


class LanguageSchema(Schema):
    code = fields.String(required=True)


class TranscriptionJsonSchema(Schema):
    """`response_format=json`."""

    text = fields.String(required=True)
    logprobs = fields.List(fields.Nested(LogprobSchema), metadata={"description": "With include[]=logprobs."})
    languages = fields.List(
        fields.Nested(LanguageSchema), metadata={"description": "For gpt-transcribe or languages[]."}
    )
    usage = fields.Nested(DurationUsageSchema)


class DiarizedSegmentSchema(Schema):
    type = fields.String(required=True, validate=validate.Equal("transcript.text.segment"))
    id = fields.String(required=True)
    start = fields.Float(required=True)
    end = fields.Float(required=True)
    text = fields.String(required=True)
    speaker = fields.String(required=True)


class TranscriptionDiarizedSchema(Schema):
    """`response_format=diarized_json`."""

    task = fields.String(required=True, validate=validate.Equal("transcribe"))
    duration = fields.Float(required=True)
    text = fields.String(required=True)
    segments = fields.List(fields.Nested(DiarizedSegmentSchema), required=True)
    usage = fields.Nested(DurationUsageSchema)


class WordSchema(Schema):
    word = fields.String(required=True)
    start = fields.Float(required=True)
    end = fields.Float(required=True)


class SegmentSchema(Schema):
    id = fields.Integer(required=True)
    seek = fields.Integer(required=True)
    start = fields.Float(required=True)
    end = fields.Float(required=True)
    text = fields.String(required=True)
    tokens = fields.List(fields.Integer(), required=True)
    temperature = fields.Float(required=True)
    avg_logprob = fields.Float(required=True)
    compression_ratio = fields.Float(required=True)
    no_speech_prob = fields.Float(required=True)


class TranscriptionVerboseSchema(Schema):
    """`response_format=verbose_json`."""

    task = fields.String(required=True, validate=validate.OneOf(("transcribe", "translate")))
    language = fields.String(required=True)
    duration = fields.Float(required=True)
    text = fields.String(required=True)
    segments = fields.List(fields.Nested(SegmentSchema))
    words = fields.List(fields.Nested(WordSchema))
    usage = fields.Nested(DurationUsageSchema)


class TranscriptStreamEventSchema(Schema):
    """One server-sent event of `stream=true`: `data` holds a JSON event, the last one `[DONE]`."""

    data = fields.String(
        required=True,
        metadata={
            "description": "`transcript.text.delta`, `transcript.text.segment` (diarized_json), "
            "`transcript.text.done` or error JSON; then `[DONE]`"
        },
    )
    event = fields.String()
    id = fields.String()
