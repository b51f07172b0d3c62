"""`/docs`: the OpenAPI document (`/openapi.json`) rendered by a vendored Swagger UI, no Internet needed."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from whisper_api.web.apidoc import HTML, documented

bp = Blueprint("docs", __name__)


@bp.get("/docs")
@documented(
    "This API rendered by Swagger UI (served locally)", responses={200: ("HTML", {HTML: str})}, public=True
)
def docs_page() -> str:
    # script_root carries a trusted X-Forwarded-Prefix, so the page also works under /whisper/.
    return render_template("docs.html", spec_url=request.script_root + "/openapi.json")
