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
from whisper_api.web.speech_schemas import VoiceField

AUDIO_FORMATS = ("wav", "mp3")
#: `audio.format` of a spoken answer (`pcm16` is raw 24 kHz 16-bit mono, the speech API's `pcm`).
OUTPUT_FORMATS = ("wav", "aac", "mp3", "flac", "opus", "pcm16")
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


class AudioOutputSchema(Schema):
    """`audio`: how to speak the answer when `modalities` has "audio"."""

    class Meta:
        unknown = EXCLUDE

    voice = VoiceField(required=True)
    format = fields.String(
        required=True, validate=validate.OneOf(OUTPUT_FORMATS, error="must be one of: {choices}.")
    )


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
    audio = fields.Nested(AudioOutputSchema, load_default=None, allow_none=True)
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
    if "audio" in params["modalities"] and params["audio"] is None:
        raise InvalidRequestError(
            "The 'audio' parameter is required when 'modalities' includes 'audio' "
            '(e.g. {"voice": "alloy", "format": "wav"}).',
            param="audio",
        )
    return params


# --- responses: our own completions are dumped through these, and /openapi.json shows them --------


class AudioOutSchema(Schema):
    id = fields.String(required=True)
    data = fields.String(required=True, metadata={"description": "Base64 audio in the asked format"})
    expires_at = fields.Integer(required=True)
    transcript = fields.String(required=True)


class AssistantMessageSchema(Schema):
    role = fields.String(required=True)
    content = fields.String(required=True, allow_none=True)
    refusal = fields.String(allow_none=True)
    annotations = fields.List(fields.Dict())
    audio = fields.Nested(AudioOutSchema, allow_none=True)


class ChoiceSchema(Schema):
    index = fields.Integer(required=True)
    message = fields.Nested(AssistantMessageSchema, required=True)
    logprobs = fields.Raw(allow_none=True)
    finish_reason = fields.String(required=True, allow_none=True)


class ChatUsageSchema(Schema):
    prompt_tokens = fields.Integer(required=True)
    completion_tokens = fields.Integer(required=True)
    total_tokens = fields.Integer(required=True)
    prompt_tokens_details = fields.Dict()
    completion_tokens_details = fields.Dict()


class ChatCompletionObjectSchema(Schema):
    """A whole completion (`stream` false); with an upstream LLM, its answer is relayed as it came."""

    id = fields.String(required=True)
    object = fields.String(required=True, validate=validate.Equal("chat.completion"))
    created = fields.Integer(required=True)
    model = fields.String(required=True)
    choices = fields.List(fields.Nested(ChoiceSchema), required=True)
    usage = fields.Nested(ChatUsageSchema, allow_none=True)


class ChatChunkEventSchema(Schema):
    """One server-sent event of `stream=true`: a `chat.completion.chunk` JSON, the last one `[DONE]`."""

    data = fields.String(required=True)
