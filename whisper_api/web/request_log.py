"""Per-request bookkeeping: the request id, one access-log line and the Prometheus counters.

The log line is written when the response is closed, i.e. after the last byte of a stream, so its
processing time covers the whole transcription. It never holds audio, transcript text, form fields,
query strings or headers other than the user agent: API keys and content stay out of logs.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from flask import Flask, Response, g, request

from whisper_api.web import metrics

access_logger = logging.getLogger("whisper_api.access")
logger = logging.getLogger(__name__)

_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,127}")
#: Probes and scrapes arrive every few seconds; their lines are logged at DEBUG only.
_QUIET_ENDPOINTS = frozenset({"/health", "/ready", "/metrics"})


@dataclass(frozen=True)
class AudioWork:
    """What a transcription request worked on, for the log line and the metrics."""

    model: str
    task: str
    audio_seconds: float


def request_id_for(incoming: str | None) -> str:
    """Keep a caller's `X-Request-Id` when it is short and plain; otherwise make one."""
    if incoming and _SANE_REQUEST_ID.fullmatch(incoming):
        return incoming
    return "req_" + uuid.uuid4().hex


def note_audio_work(model: str, task: str, audio_seconds: float) -> None:
    """Called by the audio endpoints once the audio is decoded and the model chosen."""
    g.audio_work = AudioWork(model, task, round(audio_seconds, 3))


def register(app: Flask, log_format: str) -> None:

    @app.after_request
    def record_on_close(response: Response) -> Response:
        started = g.get("started", time.perf_counter())
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        fields: dict[str, Any] = {
            "request_id": g.get("request_id", ""),
            "method": request.method,
            "path": request.path,
            "endpoint": endpoint,
            "status": response.status_code,
            "client": request.remote_addr,
            "bytes_in": request.content_length,
            "user_agent": (request.user_agent.string or "")[:200] or None,
        }
        work: AudioWork | None = g.get("audio_work")

        def finish() -> None:
            try:
                record(seconds=time.perf_counter() - started)
            except Exception:  # noqa: BLE001 - bookkeeping must never break a response
                logger.exception("cannot record request %s", fields["request_id"])

        def record(seconds: float) -> None:
            metrics.observe_request(endpoint, fields["method"], fields["status"], seconds)
            if work is not None:
                fields.update(model=work.model, task=work.task, audio_seconds=work.audio_seconds)
                if fields["status"] == 200:
                    metrics.observe_audio(work.model, work.task, work.audio_seconds, seconds)
            fields["processing_ms"] = round(seconds * 1000, 1)
            level = logging.DEBUG if endpoint in _QUIET_ENDPOINTS else logging.INFO
            if log_format != "off":
                access_logger.log(level, format_line(fields, log_format))

        response.call_on_close(finish)
        return response


def format_line(fields: dict[str, Any], log_format: str) -> str:
    record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "event": "request"}
    record.update(fields)
    if log_format == "text":
        return " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in record.items())
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
