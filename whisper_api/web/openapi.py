"""`GET /openapi.json`: the API described from our marshmallow schemas with apispec.

Request bodies come from the very schemas the views validate with (`TranscriptionSchema`,
`TranslationSchema`); the few fields only the wire sees (the `file` part, `[]` list names) are
added by subclassing them here. Responses are described by marshmallow schemas as well, so the
document is generated, never written by hand. `build_spec` is reusable (e.g. by a `/docs` page).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Response
from marshmallow import Schema, fields, validate

import whisper_api
from whisper_api.web.responses import TEXT_MIMETYPE, json_response
from whisper_api.web.schemas import GRANULARITIES, TranscriptionSchema, TranslationSchema

bp = Blueprint("openapi", __name__)

OPENAPI_VERSION = "3.0.3"
JSON = "application/json"


def _wire(schema: type[Schema], name: str) -> type[Schema]:
    """The multipart body of an audio endpoint: the view's schema plus the parts it reads itself."""
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
    return type(name, (schema,), extra)


class UsageSchema(Schema):
    type = fields.String(required=True)
    seconds = fields.Integer(required=True)


class TranscriptionJsonSchema(Schema):
    """`response_format=json`."""

    text = fields.String(required=True)
    usage = fields.Nested(UsageSchema)


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
    usage = fields.Nested(UsageSchema)


class StreamEventSchema(Schema):
    """One server-sent event of `stream=true`: `data` holds a JSON event, the last one `[DONE]`."""

    data = fields.String(
        required=True,
        metadata={
            "description": "`transcript.text.delta`, `transcript.text.done` or error JSON; then `[DONE]`"
        },
    )
    event = fields.String()
    id = fields.String()


class ErrorBodySchema(Schema):
    message = fields.String(required=True)
    type = fields.String(required=True)
    param = fields.String(required=True, allow_none=True)
    code = fields.String(required=True, allow_none=True)


class ErrorSchema(Schema):
    """OpenAI's error envelope, used for every 4xx and 5xx."""

    error = fields.Nested(ErrorBodySchema, required=True)


class ModelSchema(Schema):
    id = fields.String(required=True)
    object = fields.String(required=True, validate=validate.Equal("model"))
    created = fields.Integer(required=True)
    owned_by = fields.String(required=True)
    root = fields.String()
    multilingual = fields.Boolean()


class ModelListSchema(Schema):
    object = fields.String(required=True, validate=validate.Equal("list"))
    data = fields.List(fields.Nested(ModelSchema), required=True)


class HealthSchema(Schema):
    status = fields.String(required=True)


class WorkerLoadSchema(Schema):
    admitted = fields.Integer(required=True, metadata={"description": "Requests running or queued"})
    capacity = fields.Integer(required=True, metadata={"description": "Past this many: 429"})


class ReadySchema(Schema):
    status = fields.String(required=True)
    default_model = fields.String(required=True)
    loaded = fields.List(fields.String(), required=True)
    requests = fields.Nested(WorkerLoadSchema, metadata={"description": "Load of the worker that answered"})


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "The request is invalid (the `param` names the field)",
        401: "A key is required (WHISPER_API_KEYS) and was missing or wrong",
        404: "Unknown model or URL",
        413: "The body, a form field or the number of parts is over its limit",
        429: "The worker is busy: retry after `Retry-After` seconds",
        503: "The model is not loaded yet or cannot be loaded",
        504: "Decoding or transcription overran its audio-scaled deadline",
    }
    return {str(s): {"description": reasons[s], "content": {JSON: {"schema": "Error"}}} for s in statuses}


def _no_nulls_in_forms(schema: dict[str, Any]) -> None:
    """A multipart field is absent or a string, never null: `load_default=None` means "leave it out"."""
    for prop in schema["properties"].values():
        if prop.pop("nullable", False) and prop.get("default", 0) is None:
            del prop["default"]


def _audio_operation(summary: str, body_schema: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "security": [{}, {"bearer": []}],
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": body_schema}},
            },
            "responses": {
                "200": {
                    "description": "The transcript in the requested `response_format`; "
                    "server-sent events when `stream=true`",
                    "content": {
                        JSON: {
                            "schema": {
                                "oneOf": [
                                    {"$ref": "#/components/schemas/TranscriptionJson"},
                                    {"$ref": "#/components/schemas/TranscriptionVerbose"},
                                ]
                            }
                        },
                        TEXT_MIMETYPE: {"schema": {"type": "string"}},
                        "text/event-stream; charset=utf-8": {"schema": "StreamEvent"},
                    },
                },
                **_errors(400, 401, 404, 413, 429, 503, 504),
            },
        }
    }


def build_spec() -> APISpec:
    """The whole API as an apispec object (call `.to_dict()` for the JSON document)."""
    spec = APISpec(
        title="whisper_api",
        version=whisper_api.__version__,
        openapi_version=OPENAPI_VERSION,
        info={"description": "Self-hosted, OpenAI-compatible speech-to-text (Whisper)."},
        plugins=[MarshmallowPlugin()],
    )
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    for name, schema in (
        ("TranscriptionRequest", _wire(TranscriptionSchema, "TranscriptionRequestSchema")),
        ("TranslationRequest", _wire(TranslationSchema, "TranslationRequestSchema")),
        ("TranscriptionJson", TranscriptionJsonSchema),
        ("TranscriptionVerbose", TranscriptionVerboseSchema),
        ("StreamEvent", StreamEventSchema),
        ("Error", ErrorSchema),
        ("Model", ModelSchema),
        ("ModelList", ModelListSchema),
        ("Health", HealthSchema),
        ("Ready", ReadySchema),
    ):
        spec.components.schema(name, schema=schema)
        if name.endswith("Request"):
            _no_nulls_in_forms(spec.components.schemas[name])

    spec.path(
        "/v1/audio/transcriptions", operations=_audio_operation("Transcribe audio", "TranscriptionRequest")
    )
    spec.path(
        "/v1/audio/translations",
        operations=_audio_operation("Translate audio into English", "TranslationRequest"),
    )
    secured = [{}, {"bearer": []}]
    spec.path(
        "/v1/models",
        operations={
            "get": {
                "summary": "List the models this server serves",
                "security": secured,
                "responses": {"200": {"description": "Models", "content": {JSON: {"schema": "ModelList"}}}}
                | _errors(401),
            }
        },
    )
    spec.path(
        "/v1/models/{model}",
        parameters=[{"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}],
        operations={
            "get": {
                "summary": "One model",
                "security": secured,
                "responses": {"200": {"description": "The model", "content": {JSON: {"schema": "Model"}}}}
                | _errors(401, 404),
            }
        },
    )
    spec.path(
        "/health",
        operations={
            "get": {
                "summary": "The process answers (never needs a key)",
                "security": [{}],
                "responses": {"200": {"description": "Alive", "content": {JSON: {"schema": "Health"}}}},
            }
        },
    )
    spec.path(
        "/ready",
        operations={
            "get": {
                "summary": "The default model is loaded (never needs a key)",
                "security": [{}],
                "responses": {"200": {"description": "Ready", "content": {JSON: {"schema": "Ready"}}}}
                | _errors(503),
            }
        },
    )
    return spec


@cache
def openapi_document() -> dict[str, Any]:
    return build_spec().to_dict()


@bp.get("/openapi.json")
def serve_openapi() -> Response:
    return json_response(openapi_document())
