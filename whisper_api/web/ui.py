"""`/`: a small page to try the server in a browser (all assets served from `static/ui/`)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from whisper_api.web.apidoc import HTML, documented

bp = Blueprint("ui", __name__)


@bp.get("/")
@documented("A page to try the server in a browser", responses={200: ("HTML", {HTML: str})}, public=True)
def index() -> str:
    return render_template("ui.html", api_base=request.script_root + "/v1")
