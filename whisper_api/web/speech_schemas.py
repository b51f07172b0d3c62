"""Marshmallow schema for `POST /v1/audio/speech` (OpenAI's `CreateSpeechRequest`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from whisper_api.engine.encode import FORMATS

MAX_INPUT_CHARS = 4096
STREAM_FORMATS = ("audio", "sse")


class VoiceField(fields.Field):
    """`voice`: a name (`alloy`, an installed voice) or `{"id": "<name>"}`; returns the name."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, dict):
            value = value.get("id")
        if not isinstance(value, str) or not value.strip():
            raise ValidationError('must be a voice name or an object {"id": "<voice>"}.')
        if len(value) > 256:
            raise ValidationError("is longer than 256 characters.")
        return value.strip()


class SpeechSchema(Schema):
    """`POST /v1/audio/speech`; unknown fields are ignored, as OpenAI's SDKs may add new ones."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, max=256))
    input = fields.String(
        required=True,
        validate=validate.Length(
            min=1, max=MAX_INPUT_CHARS, error="must be between {min} and {max} characters long."
        ),
    )
    voice = VoiceField(
        required=True,
        metadata={
            "description": 'OpenAI\'s voice name (`alloy`, ...), an installed voice, or `{"id": "<voice>"}`',
            "oneOf": [
                {"type": "string"},
                {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            ],
        },
    )
    instructions = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_INPUT_CHARS),
        metadata={"description": "Accepted and ignored: Piper voices have no style control"},
    )
    response_format = fields.String(
        load_default="mp3", validate=validate.OneOf(FORMATS, error="must be one of: {choices}.")
    )
    speed = fields.Float(
        load_default=1.0,
        allow_nan=False,
        validate=validate.Range(min=0.25, max=4.0, error="must be between {min} and {max}."),
    )
    stream_format = fields.String(
        load_default="audio", validate=validate.OneOf(STREAM_FORMATS, error="must be one of: {choices}.")
    )


class SpeechEventSchema(Schema):
    """One server-sent event of `stream_format=sse`: `speech.audio.delta`, then `speech.audio.done`."""

    data = fields.String(
        required=True,
        metadata={
            "description": '`{"type": "speech.audio.delta", "audio": "<base64>"}`, then `speech.audio.done`'
        },
    )


class VoiceSchema(Schema):
    """An installed voice (`GET /v1/audio/voices`)."""

    id = fields.String(required=True)
    object = fields.String(required=True, validate=validate.Equal("voice"))
    language = fields.String(required=True)
    sample_rate = fields.Integer(required=True)
    source = fields.String(required=True)
    licence = fields.String(required=True)
    openai_voices = fields.List(fields.String(), required=True)
    models = fields.List(fields.String(), required=True)


class VoiceListSchema(Schema):
    object = fields.String(required=True, validate=validate.Equal("list"))
    data = fields.List(fields.Nested(VoiceSchema), required=True)
