"""`GET /openapi.json`: the document `apidoc.build_spec` generates from the app's documented views."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, current_app

from whisper_api.web.apidoc import JSON, build_spec, documented
from whisper_api.web.responses import json_response

bp = Blueprint("openapi", __name__)

_EXTENSION_KEY = "whisper_api.openapi"


def openapi_document(app: Flask) -> dict[str, Any]:
    """The app's OpenAPI document, built on first use and kept with the app."""
    if _EXTENSION_KEY not in app.extensions:
        app.extensions[_EXTENSION_KEY] = build_spec(app).to_dict()
    return app.extensions[_EXTENSION_KEY]


@bp.get("/openapi.json")
@documented("This document (OpenAPI 3)", responses={200: ("The OpenAPI document", {JSON: str})}, public=True)
def serve_openapi() -> Response:
    return json_response(openapi_document(current_app._get_current_object()))
