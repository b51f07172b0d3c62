"""`/health` (the process answers) and `/ready` (the default model is loaded and answering)."""

from __future__ import annotations

from flask import Blueprint, Response

from whisper_api.errors import ModelUnavailableError
from whisper_api.web.responses import json_response
from whisper_api.web.state import get_state

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    return json_response({"status": "ok"})


@bp.get("/ready")
def ready() -> Response:
    state = get_state()
    registry = state.registry
    if not registry.ready:
        raise ModelUnavailableError(
            f"Model '{registry.default_name}' is still loading.", headers={"Retry-After": "5"}
        )
    return json_response(
        {
            "status": "ready",
            "default_model": registry.default_name,
            "loaded": registry.loaded_names(),
            "requests": state.admission.describe(),  # of the worker that answered
        }
    )
