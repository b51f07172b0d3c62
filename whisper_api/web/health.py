"""`/health` (the process answers) and `/ready` (the default model is loaded and answering)."""

from __future__ import annotations

from flask import Blueprint, Response
from marshmallow import Schema, fields

from whisper_api.errors import ModelUnavailableError
from whisper_api.web.apidoc import JSON, documented
from whisper_api.web.responses import json_response
from whisper_api.web.state import get_state

bp = Blueprint("health", __name__)


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


@bp.get("/health")
@documented(
    "The process answers (never needs a key)", responses={200: ("Alive", {JSON: HealthSchema})}, public=True
)
def health() -> Response:
    return json_response(HealthSchema().dump({"status": "ok"}))


@bp.get("/ready")
@documented(
    "The default model is loaded (never needs a key)",
    responses={200: ("Ready", {JSON: ReadySchema})},
    errors=(503,),
    public=True,
)
def ready() -> Response:
    state = get_state()
    registry = state.registry
    if not registry.ready:
        raise ModelUnavailableError(
            f"Model '{registry.default_name}' is still loading.", headers={"Retry-After": "5"}
        )
    return json_response(
        ReadySchema().dump(
            {
                "status": "ready",
                "default_model": registry.default_name,
                "loaded": registry.loaded_names(),
                "requests": state.admission.describe(),  # of the worker that answered
            }
        )
    )
