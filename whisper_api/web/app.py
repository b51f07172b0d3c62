"""The Flask app factory."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from whisper_api.config import Settings
from whisper_api.engine.engines import Loader
from whisper_api.engine.registry import ModelRegistry
from whisper_api.engine.voices import VoiceCatalog
from whisper_api.model_control import ModelControl
from whisper_api.web import (
    audio,
    chat,
    docs,
    drain,
    health,
    metrics,
    models,
    openapi,
    request_log,
    speech,
    ui,
)
from whisper_api.web.admin import register_admin
from whisper_api.web.admission import Admission
from whisper_api.web.auth import register_auth
from whisper_api.web.body import guard_input
from whisper_api.web.errors import register_error_handlers
from whisper_api.web.realtime import views as realtime
from whisper_api.web.state import EXTENSION_KEY, AppState
from whisper_api.web.uploads import InMemoryRequest

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, loader: Loader | None = None) -> Flask:
    """Build the app; nothing is loaded until a worker asks (see gunicorn.conf.py)."""
    settings = settings or Settings.from_env()
    settings.alias_map  # noqa: B018 - a malformed WHISPER_API_MODEL_ALIASES stops the start, not a request
    app = Flask(__name__)
    app.request_class = InMemoryRequest
    app.url_map.strict_slashes = False  # a redirect would make clients re-send the upload
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_form_field_bytes
    app.config["MAX_FORM_PARTS"] = settings.max_form_parts
    admission = Admission(
        settings.effective_max_concurrent, settings.effective_max_queue, settings.queue_timeout
    )
    metrics.SLOTS.set(admission.max_running)
    voices = VoiceCatalog(settings.voices_dir, settings.effective_cpu_threads)
    registry = ModelRegistry(settings, loader, events=metrics.ModelMetrics())
    app.extensions[EXTENSION_KEY] = AppState(settings, registry, admission=admission, voices=voices)
    app.wsgi_app = guard_input(app.wsgi_app)  # body framing errors are the client's 400
    if settings.trusted_proxies > 0:  # X-Forwarded-* are spoofable unless a known proxy sets them
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)

    register_error_handlers(app)
    app.register_blueprint(audio.bp)
    app.register_blueprint(speech.bp)
    app.register_blueprint(models.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(openapi.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(ui.bp)
    realtime.register(app, settings)
    request_log.register(app, settings.log_format)
    # Early errors (401, 413, 429) go out at once; a bounded part of the unread upload is read after.
    drain.register(app, limit=2 * settings.max_upload_bytes, seconds=settings.drain_seconds)

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()
        g.request_id = request_log.request_id_for(request.headers.get("X-Request-Id"))

    @app.after_request
    def add_headers(response: Response) -> Response:
        response.headers["x-request-id"] = g.get("request_id", "")
        started = g.get("started")
        if started is not None:
            elapsed_ms = int((time.perf_counter() - started) * 1000)
            response.headers["openai-processing-ms"] = str(elapsed_ms)
        response.headers.setdefault("openai-version", "2020-10-01")
        return response

    register_admin(app, settings, _model_control(settings, registry))
    register_auth(app, settings)  # after start_timer: a 401 still carries its request id
    return app


def _model_control(settings: Settings, registry: ModelRegistry) -> ModelControl | None:
    """The shared record admin actions go through; none while the admin API is off."""
    if not any(settings.admin_keys):
        return None
    folder = settings.control_dir or Path(tempfile.mkdtemp(prefix="whisper_api-control-"))
    return ModelControl(registry, folder)
