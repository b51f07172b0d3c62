"""`GET /v1/models` and `GET /v1/models/<id>` (ids may contain `/`)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from whisper_api.engine.types import ModelDescription
from whisper_api.errors import ModelNotFoundError
from whisper_api.web.aliases import alias_targets
from whisper_api.web.responses import json_response
from whisper_api.web.state import get_state

bp = Blueprint("models", __name__, url_prefix="/v1/models")

OWNER = "whisper_api"


def _model_object(model_id: str, model: ModelDescription) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": model.created,
        "owned_by": OWNER,
        # Extensions, ignored by the SDKs: what actually serves this id.
        "root": model.name,
        "multilingual": model.multilingual,
    }


def _all_models() -> list[dict[str, Any]]:
    state = get_state()
    described = {m.name: m for m in state.registry.describe()}
    objects = [_model_object(name, m) for name, m in described.items()]
    for alias, target in alias_targets(state.settings).items():
        if target in described and alias not in described:
            objects.append(_model_object(alias, described[target]))
    return objects


@bp.get("")
def list_models() -> Response:
    return json_response({"object": "list", "data": _all_models()})


@bp.get("/<path:model_id>")
def retrieve_model(model_id: str) -> Response:
    for model in _all_models():
        if model["id"] == model_id:
            return json_response(model)
    raise ModelNotFoundError(model_id)
