"""`/docs`: the OpenAPI document (`/openapi.json`) rendered by a vendored Swagger UI, no Internet needed."""

from __future__ import annotations

from flask import Blueprint, render_template, request

bp = Blueprint("docs", __name__)


@bp.get("/docs")
def docs_page() -> str:
    # script_root carries a trusted X-Forwarded-Prefix, so the page also works under /whisper/.
    return render_template("docs.html", spec_url=request.script_root + "/openapi.json")
