"""`/`: a small page to try the server in a browser (all assets served from `static/ui/`)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

bp = Blueprint("ui", __name__)


@bp.get("/")
def index() -> str:
    return render_template("ui.html", api_base=request.script_root + "/v1")
