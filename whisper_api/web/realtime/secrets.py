"""Ephemeral client secrets for browsers: `POST /v1/realtime/client_secrets` (GA) and the beta
`POST /v1/realtime/transcription_sessions`.

A backend that holds a real API key mints a short-lived `ek_...` secret and hands it to a browser,
which opens a Realtime WebSocket with it. The secret is an HMAC over its expiry, keyed by a digest of
the configured API keys, so every worker checks any worker's secrets without sharing state; it
opens only the Realtime WebSocket routes, never another endpoint, and never reveals the real key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import Schema, fields

from whisper_api.errors import InvalidRequestError
from whisper_api.web.apidoc import JSON, documented
from whisper_api.web.realtime.channel import new_id
from whisper_api.web.realtime.config import SessionConfig, apply_update, render
from whisper_api.web.state import get_state

bp = Blueprint("realtime_secrets", __name__, url_prefix="/v1/realtime")
EXTENSION_KEY = "whisper_api.realtime_secrets"
PREFIX = "ek_"
#: Paths an ephemeral secret opens: the Realtime WebSockets only.
SCOPE = frozenset({"/v1/realtime", "/v1/realtime/translations"})
DEFAULT_SECONDS = 600
MIN_SECONDS, MAX_SECONDS = 10, 7200  # OpenAI's bounds for `expires_after.seconds`


class ClientSecretSchema(Schema):
    """`POST /v1/realtime/client_secrets`: the secret and the session it opens."""

    value = fields.String(required=True)
    expires_at = fields.Integer(required=True)
    session = fields.Dict(required=True)


class TranscriptionSessionSchema(Schema):
    """Beta `POST /v1/realtime/transcription_sessions`: the session with its `client_secret`."""

    id = fields.String(required=True)
    object = fields.String(required=True)
    expires_at = fields.Integer()
    input_audio_format = fields.String()
    input_audio_transcription = fields.Dict()
    turn_detection = fields.Dict(allow_none=True)
    client_secret = fields.Dict(required=True)


class ClientSecrets:
    """Mints and checks ephemeral secrets."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        material = "\n".join(sorted(keys)).encode("utf-8", "surrogateescape")
        self._key = hashlib.sha256(b"whisper_api realtime client secret\n" + material).digest()

    def mint(self, seconds: int) -> tuple[str, int]:
        expires_at = int(time.time()) + seconds
        nonce = secrets.token_hex(8)
        return f"{PREFIX}{expires_at}_{nonce}_{self._sign(expires_at, nonce)}", expires_at

    def accepts(self, value: str) -> bool:
        parts = value[len(PREFIX) :].split("_") if value.startswith(PREFIX) else []
        if len(parts) != 3 or not parts[0].isdigit():
            return False
        expires_at, nonce, signature = int(parts[0]), parts[1], parts[2]
        return hmac.compare_digest(signature, self._sign(expires_at, nonce)) and time.time() < expires_at

    def _sign(self, expires_at: int, nonce: str) -> str:
        return hmac.new(self._key, f"{expires_at}.{nonce}".encode(), hashlib.sha256).hexdigest()[:40]


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True) if request.content_length else {}
    if not isinstance(body, dict):
        raise InvalidRequestError("The body must be a JSON object.", code="invalid_json")
    return body


def _configured(event_type: str, session: Any) -> SessionConfig:  # noqa: ANN401 - raw JSON
    config = SessionConfig(model=get_state().registry.default_name)
    if session is None:
        return config
    return apply_update(config, {"type": event_type, "session": session})


@bp.post("/client_secrets")
@documented(
    "Mint a short-lived Realtime client secret for a browser",
    responses={200: ("The secret", {JSON: ClientSecretSchema})},
    errors=(400,),
)
def create_client_secret() -> Response:
    body = _body()
    after = body.get("expires_after") or {}
    seconds = after.get("seconds", DEFAULT_SECONDS) if isinstance(after, dict) else None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise InvalidRequestError(
            f"expires_after.seconds must be an integer from {MIN_SECONDS} to {MAX_SECONDS}.",
            param="expires_after.seconds",
            code="invalid_value",
        )
    config = _configured("session.update", body.get("session"))
    value, expires_at = current_app.extensions[EXTENSION_KEY].mint(seconds)
    session = render(config, "ga", new_id("sess"), expires_at)
    return jsonify({"value": value, "expires_at": expires_at, "session": session})


@bp.post("/transcription_sessions")
@documented(
    "Mint a Realtime transcription session with a client secret (beta)",
    responses={200: ("The session", {JSON: TranscriptionSessionSchema})},
    errors=(400,),
)
def create_transcription_session() -> Response:
    config = _configured("transcription_session.update", _body())
    value, expires_at = current_app.extensions[EXTENSION_KEY].mint(DEFAULT_SECONDS)
    session = render(config, "beta", new_id("sess"), expires_at)
    return jsonify({**session, "client_secret": {"value": value, "expires_at": expires_at}})
