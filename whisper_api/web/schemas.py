"""Marshmallow schemas of `/v1/audio/*`: form fields in, and the JSON shapes the transcript goes out in."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate
from werkzeug.datastructures import MultiDict

from whisper_api.engine.languages import normalise_language

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
#: Fields the SDKs send as `name[]` parts (curl users send the bare name).
LIST_FIELDS = frozenset({"timestamp_granularities", "include", "known_speaker_names",
                         "known_speaker_references", "languages", "keywords"})  # fmt: skip


def form_to_payload(form: MultiDict[str, str]) -> dict[str, Any]:
    """Flatten a multipart form the way OpenAI clients encode it.

    `x[]` and `x` both fill list fields (a comma-separated value is split too); `a[b]=c`
    becomes `{"a": {"b": "c"}}`; empty strings mean "not set" (node sends `language=`).
    """
    payload: dict[str, Any] = {}
    for key in form:
        if not isinstance(key, str):  # a part whose name Werkzeug could not parse
            continue
        values = [v for v in form.getlist(key) if v.strip()]
        if not values:
            continue
        name = key[:-2] if key.endswith("[]") else key
        if name in LIST_FIELDS:
            items = payload.setdefault(name, [])
            if isinstance(items, list):
                items.extend(p.strip() for v in values for p in v.split(",") if p.strip())
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
    include = fields.List(fields.String(), load_default=list)
    chunking_strategy = fields.Raw(load_default=None)
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
        return data


class TranscriptionSchema(AudioRequestSchema):
    """`POST /v1/audio/transcriptions`."""


class TranslationSchema(AudioRequestSchema):
    """`POST /v1/audio/translations`: `language` is only a hint about the spoken language."""


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
        "include": fields.List(fields.String(), data_key="include[]"),
        "chunking_strategy": fields.String(metadata={"description": "Accepted and ignored."}),
    }
    name = schema.__name__.replace("Schema", "FormSchema")
    return type(name, (schema,), extra)


# --- responses: the formatters dump through these, and /openapi.json shows them --------------------


class DurationUsageSchema(Schema):
    type = fields.String(required=True)
    seconds = fields.Integer(required=True)


class TranscriptionJsonSchema(Schema):
    """`response_format=json`."""

    text = fields.String(required=True)
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
            "description": "`transcript.text.delta`, `transcript.text.done` or error JSON; then `[DONE]`"
        },
    )
    event = fields.String()
    id = fields.String()
