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
    voice = VoiceField(required=True)
    instructions = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_INPUT_CHARS)
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
