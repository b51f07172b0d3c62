"""`stream=true`: server-sent events, one `transcript.text.delta` per decoded segment."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Response, stream_with_context

from whisper_api.engine.types import Segment, TranscriptionInfo
from whisper_api.errors import ApiError, InternalError
from whisper_api.web.formatting import usage

logger = logging.getLogger(__name__)


def sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def transcript_events(info: TranscriptionInfo, segments: Iterator[Segment]) -> Iterator[str]:
    """Deltas as segments are decoded, one `done` with the whole text, then `[DONE]`."""
    parts: list[str] = []
    try:
        for segment in segments:
            delta = segment.text if parts else segment.text.lstrip()
            if not delta:
                continue
            parts.append(delta)
            yield sse({"type": "transcript.text.delta", "delta": delta})
        yield sse(
            {
                "type": "transcript.text.done",
                "text": "".join(parts).strip(),
                "usage": usage(info.duration),
            }
        )
    except ApiError as exc:
        yield sse(exc.to_dict())
    except Exception:  # noqa: BLE001 - the status line is sent: report it in the stream
        logger.exception("transcription failed mid-stream")
        yield sse(InternalError("The server had an error while processing your request.").to_dict())
    yield sse("[DONE]")


def stream_transcript(info: TranscriptionInfo, segments: Iterator[Segment], *, task: str) -> Response:
    response = Response(
        stream_with_context(transcript_events(info, segments)),
        status=200,
        content_type="text/event-stream; charset=utf-8",
    )
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
