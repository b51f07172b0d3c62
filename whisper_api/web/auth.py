"""Optional API keys: off unless WHISPER_API_KEYS or WHISPER_API_KEYS_FILE name some.

Keys are compared as SHA-256 digests with `hmac.compare_digest`, against every configured key,
so neither the key's length nor its matching prefix shows in the timing. Keys are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path

from flask import Flask, g, request

from whisper_api.config import Settings
from whisper_api.errors import AuthenticationError, MissingApiKeyError
from whisper_api.web.realtime.secrets import EXTENSION_KEY as SECRETS_KEY
from whisper_api.web.realtime.secrets import SCOPE as SECRET_SCOPE
from whisper_api.web.realtime.secrets import ClientSecrets

logger = logging.getLogger(__name__)

#: Keys shorter than this are easy to guess; they work, but the server warns at start.
MIN_KEY_LENGTH = 16

#: Paths load balancers and browsers reach without a key (probes, the API description).
OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json", "/"})
OPEN_PREFIXES = ("/docs", "/static/")  # the pages hold no data; their API calls send the key
ADMIN_PREFIX = "/admin/"
#: The Realtime WebSocket views (web/realtime/views.py): a refused key is told over the socket.
REALTIME_SOCKETS = frozenset({"realtime.connect", "realtime.connect_translation"})

MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header "
    "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def load_keys(settings: Settings) -> tuple[str, ...]:
    """Every accepted key: the setting's list plus the keys file's lines (blank and `#` skipped)."""
    keys = [k for k in settings.api_keys if k]
    if settings.api_keys_file is not None:
        text = Path(settings.api_keys_file).read_text(encoding="utf-8")
        keys += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return tuple(dict.fromkeys(keys))


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyChecker:
    """Accepts a request whose bearer token equals one of the configured keys."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._digests = tuple(_digest(k) for k in keys)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def accepts(self, presented: str) -> bool:
        candidate = _digest(presented)
        matched = False
        for digest in self._digests:  # no early exit: every key costs the same
            matched |= hmac.compare_digest(candidate, digest)
        return matched


def presented_key(authorization: str | None, api_key_header: str | None) -> str | None:
    """The key from `Authorization: Bearer KEY` (or Azure-style `api-key: KEY`), if any."""
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key_header and api_key_header.strip():
        return api_key_header.strip()
    return None


def websocket_key(protocols: str | None) -> str | None:
    """The key a browser offers as the WebSocket sub-protocol `openai-insecure-api-key.<key>`."""
    for protocol in (protocols or "").split(","):
        name, _, key = protocol.strip().partition(".")
        if name == "openai-insecure-api-key" and key:
            return key
    return None


def masked(key: str) -> str:
    """OpenAI shows a wrong key as `sk-abc***xyz`; short keys are not shown at all."""
    return f"{key[:3]}***{key[-3:]}" if len(key) >= MIN_KEY_LENGTH else "***"


def register_auth(app: Flask, settings: Settings) -> KeyChecker:
    """Require a key on every path but the open ones, when any key is configured."""
    keys = load_keys(settings)
    short = sum(len(key) < MIN_KEY_LENGTH for key in keys)
    if short:
        logger.warning(
            "%d of %d API keys are shorter than %d characters and easy to guess; use long random "
            "keys (e.g. `openssl rand -hex 24`)",
            short,
            len(keys),
            MIN_KEY_LENGTH,
        )
    checker = KeyChecker(keys)
    ephemeral = ClientSecrets(keys)
    app.extensions[SECRETS_KEY] = ephemeral

    @app.before_request
    def require_key() -> None:
        if not checker.enabled or request.method == "OPTIONS":
            return
        if request.path in OPEN_PATHS or request.path.startswith(OPEN_PREFIXES):
            return
        if request.path.startswith(ADMIN_PREFIX):
            return  # the admin API checks its own keys (web/admin.py); a user key never opens it
        try:
            check_key()
        except AuthenticationError as refusal:
            if request.endpoint not in REALTIME_SOCKETS:
                raise
            # As OpenAI does: the WebSocket opens, then an `error` event and close code 3000.
            g.realtime_refusal = refusal  # web/realtime/views.py tells the client so

    def check_key() -> None:
        key = presented_key(request.headers.get("Authorization"), request.headers.get("api-key"))
        if key is None and request.path.startswith("/v1/realtime"):  # browsers cannot set headers
            key = websocket_key(request.headers.get("Sec-WebSocket-Protocol"))
        if key is None:
            raise MissingApiKeyError(MISSING_KEY_MESSAGE)
        if key.startswith("ek_") and request.path in SECRET_SCOPE and ephemeral.accepts(key):
            return  # a browser's short-lived Realtime secret, minted with a real key
        if not checker.accepts(key):
            raise AuthenticationError(f"Incorrect API key provided: {masked(key)}.")

    return checker
