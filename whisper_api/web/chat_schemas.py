"""Marshmallow schemas for `POST /v1/chat/completions`: a JSON body in, clean request data out.

Errors name the exact field the way OpenAI does (`messages[0].content[1].input_audio.data`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from whisper_api.errors import InvalidRequestError
from whisper_api.web.errors import from_validation_error

AUDIO_FORMATS = ("wav", "mp3")
MODALITIES = ("text", "audio")
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,", re.IGNORECASE)


class Base64Audio(fields.String):
    """Base64 audio bytes; a `data:audio/...;base64,` prefix some clients add is tolerated."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> bytes:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = _DATA_URL.sub("", text.strip(), count=1)
        text = "".join(text.split())  # line-wrapped base64 (MIME style)
        try:
            decoded = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError("is not valid base64.") from exc
        if not decoded:
            raise ValidationError("is empty: no audio was sent.")
        return decoded


class InputAudioSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    data = Base64Audio(required=True)
    format = fields.String(
        required=True, validate=validate.OneOf(AUDIO_FORMATS, error="must be one of: {choices}.")
    )


class ContentPartSchema(Schema):
    """One part of a message's content; parts other than text and audio are passed on untouched."""

    class Meta:
        unknown = EXCLUDE

    type = fields.String(required=True)
    text = fields.String()
    input_audio = fields.Nested(InputAudioSchema)

    def load_part(self, part: Any) -> dict[str, Any]:
        if not isinstance(part, dict):
            raise ValidationError({"_schema": ["must be an object with a 'type'."]})
        loaded = self.load(part)
        if loaded["type"] == "text" and "text" not in loaded:
            raise ValidationError({"text": ["Missing data for required field."]})
        if loaded["type"] == "input_audio" and "input_audio" not in loaded:
            raise ValidationError({"input_audio": ["Missing data for required field."]})
        return loaded


class MessageContent(fields.Field):
    """`content`: null, a string, or a list of parts (each validated, errors keep their index)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list):
            raise ValidationError("must be a string or an array of content parts.")
        schema = ContentPartSchema()
        parts: list[dict[str, Any]] = []
        errors: dict[int, Any] = {}
        for index, part in enumerate(value):
            try:
                parts.append(schema.load_part(part))
            except ValidationError as exc:
                errors[index] = exc.messages
        if errors:
            raise ValidationError(errors)
        return parts


class MessageSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    role = fields.String(required=True, validate=validate.OneOf(ROLES, error="must be one of: {choices}."))
    content = MessageContent(load_default=None, allow_none=True)


class StreamOptionsSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    include_usage = fields.Boolean(load_default=False, allow_none=True)


class ChatCompletionSchema(Schema):
    """`POST /v1/chat/completions`; fields this server does not use are kept for the upstream LLM."""

    class Meta:
        unknown = EXCLUDE

    model = fields.String(required=True, validate=validate.Length(min=1, max=256))
    messages = fields.List(
        fields.Nested(MessageSchema),
        required=True,
        validate=validate.Length(min=1, error="must contain at least one message."),
    )
    modalities = fields.List(
        fields.String(validate=validate.OneOf(MODALITIES, error="must be one of: {choices}.")),
        load_default=None,
        allow_none=True,
    )
    stream = fields.Boolean(load_default=False, allow_none=True)
    stream_options = fields.Nested(StreamOptionsSchema, load_default=None, allow_none=True)


def load_chat_request(body: Any) -> dict[str, Any]:
    """Validate a chat request body; a 400 names the failing field by its full path."""
    if not isinstance(body, dict):
        raise InvalidRequestError(
            "We could not parse the JSON body of your request. The body must be a JSON object "
            "(Content-Type: application/json)."
        )
    try:
        params = ChatCompletionSchema().load(body)
    except ValidationError as exc:
        raise from_validation_error(exc) from exc
    params["stream"] = bool(params["stream"])
    params["modalities"] = params["modalities"] or ["text"]
    params["include_usage"] = bool((params["stream_options"] or {}).get("include_usage"))
    return params
