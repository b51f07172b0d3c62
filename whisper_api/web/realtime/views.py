"""`GET /v1/realtime`: the WebSocket handshake, refused with an HTTP error when it cannot be served."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from simple_websocket import Server

from whisper_api import shutdown
from whisper_api.config import Settings
from whisper_api.errors import ApiError, InvalidRequestError, ModelUnavailableError, ServerBusyError
from whisper_api.web.apidoc import documented
from whisper_api.web.realtime import metrics, secrets
from whisper_api.web.realtime.channel import UNAUTHORIZED, Channel, error_event, new_id
from whisper_api.web.realtime.config import Generation, SessionConfig
from whisper_api.web.realtime.session import Limits, RealtimeSession
from whisper_api.web.realtime.transcribe import transcribe_utterance
from whisper_api.web.realtime.translation import TranslationSession, speaker
from whisper_api.web.state import AppState, get_state

logger = logging.getLogger(__name__)

bp = Blueprint("realtime", __name__, url_prefix="/v1/realtime")
EXTENSION_KEY = "whisper_api.realtime"
#: OpenAI's limit for one client event (an `append` of 15 MiB of base64 and its JSON).
MAX_EVENT_BYTES = 16 * 1024 * 1024
BROWSER_PROTOCOL = "realtime"  # browsers abort unless the server selects it
BETA_PROTOCOL = "openai-beta.realtime-v1"


class SessionCount:
    """Open sessions in this worker, bounded (thread-safe)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._open >= self.limit:
                return False
            self._open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._open -= 1

    @property
    def open(self) -> int:
        with self._lock:
            return self._open


def register(app: Flask, settings: Settings) -> None:
    app.extensions[EXTENSION_KEY] = SessionCount(settings.effective_realtime_sessions)
    app.register_blueprint(bp)
    app.register_blueprint(secrets.bp)


def offered_protocols(environ: dict[str, Any]) -> list[str]:
    return [p.strip() for p in environ.get("HTTP_SEC_WEBSOCKET_PROTOCOL", "").split(",") if p.strip()]


@bp.route("", websocket=True)
@documented(
    "Realtime transcription over WebSocket (`?intent=transcription`; GA and beta events)",
    responses={101: ("Switching to the WebSocket protocol", {})},
    errors=(400, 429, 503),
)
def connect() -> Response:
    """Live transcription (GA or beta, by header or sub-protocol)."""
    if request.args.get("call_id"):
        raise InvalidRequestError(
            "This server has no calls: connect with `intent=transcription`.", param="call_id"
        )
    return _accept("transcription")


@bp.route("/translations", websocket=True)
@documented(
    "Realtime translation into English over WebSocket",
    responses={101: ("Switching to the WebSocket protocol", {})},
    errors=(400, 429, 503),
)
def connect_translation() -> Response:
    """Live translation into English."""
    return _accept("translation")


def _accept(kind: str) -> Response:
    refusal = g.pop("realtime_refusal", None)  # a missing or wrong key (web/auth.py)
    if refusal is not None:
        return _refuse(refusal)
    if shutdown.DRAINING.is_set():
        raise ModelUnavailableError("The server is shutting down.", code="shutting_down")
    state = get_state()
    model = _session_model(kind, request.args.get("model"))
    sessions: SessionCount = current_app.extensions[EXTENSION_KEY]
    if not sessions.take():
        metrics.SESSIONS.labels(outcome="full").inc()
        raise ServerBusyError(
            f"This worker already serves its maximum of {sessions.limit} Realtime sessions. "
            "Please retry later.",
            code="too_many_sessions",
            headers={"Retry-After": "5"},
        )
    protocols = offered_protocols(request.environ)
    beta = "realtime=v1" in request.headers.get("OpenAI-Beta", "") or BETA_PROTOCOL in protocols
    generation: Generation = "beta" if beta else "ga"
    metrics.OPEN_SESSIONS.inc()
    try:
        ws = Server.accept(request.environ, subprotocols=[BROWSER_PROTOCOL], max_message_size=MAX_EVENT_BYTES)
        _serve(state, Channel(ws), generation, kind=kind, model=model)
    finally:
        metrics.OPEN_SESSIONS.dec()
        sessions.give_back()
    return _AfterWebSocket()


def _refuse(refusal: ApiError) -> Response:
    """OpenAI's answer to a bad key on its WebSocket: the upgrade, an `error` event, close 3000."""
    metrics.SESSIONS.labels(outcome="unauthorized").inc()
    ws = Server.accept(request.environ, subprotocols=[BROWSER_PROTOCOL], max_message_size=MAX_EVENT_BYTES)
    channel = Channel(ws)
    channel.send(error_event(refusal))
    channel.close(UNAUTHORIZED, refusal.message)
    return _AfterWebSocket()


def _session_model(kind: str, requested: str | None) -> str:
    """The local model a session starts with: translation needs a multilingual one."""
    registry = get_state().registry
    if kind != "translation":
        return registry.default_name
    name = requested if requested and registry.is_served(requested) else registry.default_name
    if not registry.locate(name).multilingual:
        raise InvalidRequestError(
            f"Model '{name}' is English-only and cannot translate; serve a multilingual model "
            "(WHISPER_MODEL=base) or ask for one with `model`.",
            param="model",
        )
    return name


def _serve(state: AppState, channel: Channel, generation: Generation, *, kind: str, model: str) -> None:
    settings = state.settings
    session_id = new_id("sess")
    task = "translate" if kind == "translation" else "transcribe"

    def check(config: SessionConfig) -> None:
        """An update naming a model this server cannot use is refused before any audio."""
        with state.pipeline.admit_live(lambda: False) as job:
            job.choose_model(config.model, task=task, language=config.language)  # type: ignore[arg-type]

    common: dict[str, Any] = {
        "session_id": session_id,
        "config": SessionConfig(model=model),
        "generation": generation,
        "limits": Limits(
            idle_seconds=settings.realtime_idle_timeout,
            max_session_seconds=settings.realtime_max_session_seconds,
            max_buffer_seconds=settings.realtime_max_buffer_seconds,
            drain_seconds=max(1.0, settings.graceful_timeout - 5.0),
        ),
        "transcribe": functools.partial(
            transcribe_utterance,
            pipeline=state.pipeline,
            is_gone=lambda: not channel.open,
            session_id=session_id,
        ),
        "check_model": check,
        "speculate": settings.realtime_quick_decode,
        "draining": shutdown.DRAINING,
        "task": task,
    }
    if kind == "translation":
        session: RealtimeSession = TranslationSession(
            channel,
            requested_model=request.args.get("model") or model,
            speak=speaker(state, lambda: not channel.open),
            **common,
        )
    else:
        session = RealtimeSession(channel, **common)
    outcome = session.run()
    metrics.SESSIONS.labels(outcome=outcome).inc()
    logger.info("realtime %s session %s ended: %s", kind, session_id, outcome)


class _AfterWebSocket(Response):
    """What the view returns once the socket is closed: nothing more may be written to it.

    Under gunicorn, StopIteration from the response makes the worker drop the connection without
    writing a status line (as flask-sock does); Werkzeug's dev server is told the same through its
    own socket handling.
    """

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:  # noqa: ANN401
        if "gunicorn.socket" in environ:
            raise StopIteration
        return super().__call__(environ, start_response)
