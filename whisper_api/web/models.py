"""`GET /v1/models` and `GET /v1/models/<id>` (ids may contain `/`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from marshmallow import Schema, fields, validate

from whisper_api.engine.types import ModelDescription
from whisper_api.errors import ModelNotFoundError
from whisper_api.web.aliases import alias_targets
from whisper_api.web.apidoc import JSON, documented
from whisper_api.web.responses import json_response
from whisper_api.web.state import get_state
from whisper_api.web.voices import SPEECH_MODEL_ALIASES

bp = Blueprint("models", __name__, url_prefix="/v1/models")


class ModelSchema(Schema):
    id = fields.String(required=True)
    object = fields.String(required=True, validate=validate.Equal("model"))
    created = fields.Integer(required=True)
    owned_by = fields.String(required=True)
    # Extensions, ignored by the SDKs: what actually serves this id.
    root = fields.String()
    multilingual = fields.Boolean()
    kind = fields.String(
        validate=validate.OneOf(("speech-to-text", "text-to-speech")),
        metadata={"description": "`speech-to-text` (a Whisper model) or `text-to-speech` (a voice)"},
    )
    language = fields.String(metadata={"description": "A voice's language (`en_US`)"})


class ModelListSchema(Schema):
    object = fields.String(required=True, validate=validate.Equal("list"))
    data = fields.List(fields.Nested(ModelSchema), required=True)


_MODEL = ModelSchema()
_MODEL_LIST = ModelListSchema()

OWNER = "whisper_api"


def _model_object(model_id: str, model: ModelDescription) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": model.created,
        "owned_by": OWNER,
        "root": model.name,
        "multilingual": model.multilingual,
        "kind": "speech-to-text",
    }


def _voice_objects() -> list[dict[str, Any]]:
    """Installed voices and OpenAI's speech model names, marked `kind: text-to-speech`."""
    voices = get_state().voices.locations()
    if not voices:
        return []
    objects = [
        {
            "id": v.name,
            "object": "model",
            "created": int(v.model_path.stat().st_mtime),
            "owned_by": OWNER,
            "root": v.name,
            "kind": "text-to-speech",
            "language": v.language,
        }
        for v in voices
    ]
    wanted = get_state().settings.default_voice
    default = next((o for o in objects if o["id"] == wanted), objects[0])
    objects += [{**default, "id": alias} for alias in SPEECH_MODEL_ALIASES]
    return objects


def _all_models() -> list[dict[str, Any]]:
    state = get_state()
    described = {m.name: m for m in state.registry.describe()}
    objects = [_model_object(name, m) for name, m in described.items()]
    for alias, target in alias_targets(state.settings).items():
        if target in described and alias not in described:
            objects.append(_model_object(alias, described[target]))
    return objects + _voice_objects()


@bp.get("")
@documented("List the models this server serves", responses={200: ("Models", {JSON: ModelListSchema})})
def list_models() -> Response:
    return json_response(_MODEL_LIST.dump({"object": "list", "data": _all_models()}))


@bp.get("/<path:model_id>")
@documented("One model", responses={200: ("The model", {JSON: ModelSchema})}, errors=(404,))
def retrieve_model(model_id: str) -> Response:
    for model in _all_models():
        if model["id"] == model_id:
            return json_response(_MODEL.dump(model))
    raise ModelNotFoundError(model_id)
