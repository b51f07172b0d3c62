"""The admin API: list, load, unload, pin and unpin models on every worker, behind its own keys.

`GET /admin/models` lists every served model with its state in each live worker.
`POST /admin/models/<name>/{load,unload,pin,unpin}` records the action for all workers (see
`whisper_api.model_control`), waits until each has applied it and says per worker what happened:
200 when all have, 202 when some had not yet by the time limit.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, request
from marshmallow import Schema, fields

from whisper_api.config import Settings
from whisper_api.engine.manifest import recorded_sha256
from whisper_api.errors import ApiError, AuthenticationError, MissingApiKeyError, ModelNotFoundError
from whisper_api.model_control import ACTIONS, ModelControl
from whisper_api.web.apidoc import JSON, documented
from whisper_api.web.auth import ADMIN_PREFIX, MISSING_KEY_MESSAGE, KeyChecker, masked, presented_key
from whisper_api.web.responses import json_response
from whisper_api.web.state import get_state

bp = Blueprint("admin", __name__, url_prefix="/admin")

CONTROL_KEY = "whisper_api.model_control"


class WorkerModelSchema(Schema):
    pid = fields.Integer(required=True)
    loaded = fields.Boolean(required=True)
    pinned = fields.Boolean()
    busy = fields.Integer(metadata={"description": "requests using the model now"})
    ram_mb = fields.Float()
    gpu_mb = fields.Float()
    last_used = fields.Float(allow_none=True, metadata={"description": "seconds since the epoch"})
    load_seconds = fields.Float(allow_none=True)


class AdminModelSchema(Schema):
    id = fields.String(required=True)
    object = fields.String(required=True)
    engine = fields.String(required=True)
    source = fields.String(allow_none=True)
    path = fields.String(allow_none=True)
    sha256 = fields.String(allow_none=True, metadata={"description": "recorded sha256 of model.bin"})
    multilingual = fields.Boolean()
    error = fields.String(metadata={"description": "why the model cannot be located"})
    workers = fields.List(fields.Nested(WorkerModelSchema), required=True)


class AdminModelListSchema(Schema):
    object = fields.String(required=True)
    data = fields.List(fields.Nested(AdminModelSchema), required=True)


class WorkerResultSchema(Schema):
    pid = fields.Integer(required=True)
    applied = fields.Boolean(required=True)
    result = fields.String(
        allow_none=True, metadata={"description": "loaded, unloaded, busy: ..., error: ..."}
    )
    loaded = fields.Boolean(required=True)
    pinned = fields.Boolean(required=True)


class AdminActionSchema(Schema):
    model = fields.String(required=True)
    action = fields.String(required=True)
    generation = fields.Integer(required=True)
    workers = fields.List(fields.Nested(WorkerResultSchema), required=True)


_LIST = AdminModelListSchema()
_ACTION = AdminActionSchema()


class AdminDisabledError(ApiError):
    status = 404
    type = "invalid_request_error"
    code = "admin_disabled"


def register_admin(app: Flask, settings: Settings, control: ModelControl | None) -> None:
    """Mount the admin API; its keys are WHISPER_API_ADMIN_KEYS, never the users' keys."""
    checker = KeyChecker(tuple(k for k in settings.admin_keys if k))
    app.extensions[CONTROL_KEY] = control

    @app.before_request
    def require_admin_key() -> None:
        if not request.path.startswith(ADMIN_PREFIX):
            return
        if not checker.enabled or control is None:
            raise AdminDisabledError("The admin API is off: set WHISPER_API_ADMIN_KEYS to use it.")
        key = presented_key(request.headers.get("Authorization"), request.headers.get("api-key"))
        if key is None:
            raise MissingApiKeyError(MISSING_KEY_MESSAGE)
        if not checker.accepts(key):
            raise AuthenticationError(f"Incorrect admin key provided: {masked(key)}.")

    app.register_blueprint(bp)


def _control() -> ModelControl:
    from flask import current_app

    return current_app.extensions[CONTROL_KEY]


@bp.get("/models")
@documented(
    "Admin: every served model and its state in each worker (admin key)",
    responses={200: ("Models and workers", {JSON: AdminModelListSchema})},
    errors=(401, 404),
)
def list_models() -> Response:
    control = _control()
    control.reconcile()  # this worker's report is fresh; the others report every few seconds
    registry = get_state().registry
    reports = control.reports()
    data = []
    for name in registry.served_names():
        entry: dict[str, Any] = {"id": name, "object": "model", "engine": registry.engine_name}
        try:
            location = registry.locate(name)
        except ApiError as exc:
            entry.update(source=None, path=None, sha256=None, error=exc.message)
        else:
            entry.update(
                source=location.source,
                path=str(location.path),
                sha256=recorded_sha256(location.path),
                multilingual=location.multilingual,
            )
        entry["workers"] = [
            {"pid": r["pid"], **next((m for m in r["models"] if m["name"] == name), {"loaded": False})}
            for r in reports
        ]
        data.append(entry)
    return json_response(_LIST.dump({"object": "list", "data": data}))


@bp.post("/models/<path:name>/<action>")
@documented(
    "Admin: load, unload, pin or unpin a model on every worker (admin key)",
    responses={
        200: ("What each worker did", {JSON: AdminActionSchema}),
        202: ("Some workers had not applied it by the time limit", {JSON: AdminActionSchema}),
    },
    errors=(401, 404),
)
def act(name: str, action: str) -> Response:
    if action not in ACTIONS:
        raise ModelNotFoundError(f"{name}/{action}")
    state = get_state()
    if not state.registry.is_served(name):
        raise ModelNotFoundError(name)
    control = _control()
    generation = control.request(name, action)
    control.reconcile()  # this worker at once
    reports = control.wait_for(generation, timeout=state.settings.timeout_base)
    workers = []
    for r in reports:
        model = next((m for m in r["models"] if m["name"] == name), {})
        applied = r["generation"] >= generation
        workers.append(
            {
                "pid": r["pid"],
                "applied": applied,
                "result": r["result"].get(name) if applied else "pending",
                "loaded": bool(model.get("loaded")),
                "pinned": bool(model.get("pinned")),
            }
        )
    body = {"model": name, "action": action, "generation": generation, "workers": workers}
    return json_response(_ACTION.dump(body), status=200 if all(w["applied"] for w in workers) else 202)
