"""Client for the optional upstream LLM (any OpenAI-compatible `/chat/completions` server)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests

from whisper_api.config import Settings
from whisper_api.errors import ApiError, UpstreamError, client_error_class

logger = logging.getLogger(__name__)

_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Upstream:
    """Where conversations go once their audio parts are transcripts."""

    base_url: str
    model: str | None
    api_key: str | None
    timeout: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Upstream | None:
        if not settings.chat_upstream_base_url:
            return None
        return cls(
            base_url=settings.chat_upstream_base_url.rstrip("/"),
            model=settings.chat_upstream_model or None,
            api_key=settings.chat_upstream_api_key or None,
            timeout=settings.chat_upstream_timeout,
        )

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def _post(self, body: dict[str, Any], *, stream: bool) -> requests.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            response = requests.post(
                self.url,
                json=body,
                headers=headers,
                stream=stream,
                timeout=(_CONNECT_TIMEOUT, self.timeout),
            )
        except requests.RequestException as exc:
            logger.warning("upstream chat model at %s unreachable: %s", self.base_url, type(exc).__name__)
            raise UpstreamError(
                f"The upstream chat model at {self.base_url} could not be reached ({type(exc).__name__})."
            ) from exc
        if response.status_code != 200:
            try:
                raise _error_from(response)
            finally:
                response.close()
        return response

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """One non-streaming chat completion."""
        response = self._post({**body, "stream": False}, stream=False)
        try:
            data = response.json()
        except ValueError as exc:
            raise UpstreamError("The upstream chat model answered with something that is not JSON.") from exc
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError("The upstream chat model's answer is not a chat completion.")
        return data

    def stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Start a streaming chat completion (errors so far raise here); then its chunks as they come."""
        return _chunks(self._post({**body, "stream": True}, stream=True))


def _chunks(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Parsed SSE chunks until `[DONE]`; closing the iterator closes the upstream connection."""
    try:
        # chunk_size=None hands over each chunk of a chunked response as soon as it arrives.
        for line in response.iter_lines(chunk_size=None):
            if not line.startswith(b"data:"):
                continue  # blank separators, comments, event:/id: lines
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise UpstreamError("The upstream chat model sent an event that is not JSON.") from exc
            if isinstance(chunk, dict) and chunk.get("error"):
                raise _api_error(chunk["error"], 502)
            yield chunk
    except requests.RequestException as exc:
        raise UpstreamError(f"The upstream chat model's stream broke off ({type(exc).__name__}).") from exc
    finally:
        response.close()


def _error_from(response: requests.Response) -> ApiError:
    """The upstream's own OpenAI error when it sent one (status kept), else a 502."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return _api_error(body["error"], response.status_code)
    return UpstreamError(f"The upstream chat model answered with HTTP {response.status_code}.")


def _api_error(error: Any, status: int) -> ApiError:
    if not isinstance(error, dict):
        return UpstreamError(f"The upstream chat model reported an error: {str(error)[:500]}")
    kind = client_error_class(status) if 400 <= status < 500 else UpstreamError
    return kind(
        f"Upstream chat model: {error.get('message') or 'unknown error'}",
        param=error.get("param") if isinstance(error.get("param"), str) else None,
        code=error.get("code") if isinstance(error.get("code"), str) else None,
    )
