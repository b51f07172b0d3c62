"""`stream=true`: server-sent events, one `transcript.text.delta` per decoded segment.

Nothing is buffered here: each event is yielded as soon as the engine hands over a segment, and
gunicorn's threaded worker writes it at once. When the client goes away, gunicorn closes this
generator; closing it closes the engine's segment iterator, which stops the decoding.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from flask import Response, stream_with_context

from whisper_api.engine.tokens import TokenCounter, audio_tokens
from whisper_api.engine.types import Segment, TranscriptionInfo
from whisper_api.errors import ApiError, ClientDisconnectedError, InternalError
from whisper_api.web.diarized import render_diarized_segment, segment_id
from whisper_api.web.formatting import render_languages, render_logprobs

logger = logging.getLogger(__name__)

SSE_MIMETYPE = "text/event-stream; charset=utf-8"


def sse(payload: dict[str, Any] | str) -> str:
    """One SSE frame: `data: <json>` and a blank line (no `event:`, `id:` or `retry:` lines)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def error_event(exc: Exception, what: str) -> str:
    """The SSE frame reporting a failure after the status line was sent (both SDKs raise on it)."""
    if isinstance(exc, ApiError):
        return sse(exc.to_dict())
    logger.error("%s failed mid-stream", what, exc_info=exc)
    return sse(InternalError("The server had an error while processing your request.").to_dict())


def close_iterator(iterator: object) -> None:
    """Close a generator we stopped reading, which stops the work behind it (decoding, upstream)."""
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def sse_response(events: Iterator[str]) -> Response:
    """A streaming response that proxies (nginx) and the app pass through unbuffered."""
    response = Response(stream_with_context(events), status=200, content_type=SSE_MIMETYPE)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def token_usage(
    info: TranscriptionInfo, segments: list[Segment], counter: TokenCounter, prompt: str | None
) -> dict[str, Any]:
    """OpenAI's streaming usage (tokens): audio = encoder positions, text = the prompt, output = decoded."""
    audio = audio_tokens(info.duration)
    text = counter.count_text(prompt or "")
    output = counter.count_decoded(segments)
    return {
        "type": "tokens",
        "input_tokens": audio + text,
        "input_token_details": {"text_tokens": text, "audio_tokens": audio},
        "output_tokens": output,
        "total_tokens": audio + text + output,
    }


def transcript_events(
    info: TranscriptionInfo,
    segments: Iterator[Segment],
    *,
    counter: TokenCounter | None = None,
    prompt: str | None = None,
    logprobs: bool = False,
    languages: bool = False,
) -> Iterator[str]:
    """Deltas as segments are decoded, one `done` with the whole text, then `[DONE]`.

    Diarized segments (a `speaker` set) also get a `transcript.text.segment` event each.
    """
    parts: list[str] = []
    decoded: list[Segment] = []
    try:
        for segment in segments:
            decoded.append(segment)
            delta = segment.text if parts else segment.text.lstrip()
            if not delta:
                continue
            parts.append(delta)
            event: dict[str, Any] = {"type": "transcript.text.delta", "delta": delta}
            if logprobs:
                event["logprobs"] = render_logprobs([segment])
            if segment.speaker is not None:
                event["segment_id"] = segment_id(segment)
            yield sse(event)
            if segment.speaker is not None:
                yield sse(render_diarized_segment(segment))
        done: dict[str, Any] = {"type": "transcript.text.done", "text": "".join(parts).strip()}
        if logprobs:
            done["logprobs"] = render_logprobs(decoded)
        if languages:
            done["languages"] = render_languages(info)
        if counter is not None:
            done["usage"] = token_usage(info, decoded, counter, prompt)
        yield sse(done)
    except (GeneratorExit, ClientDisconnectedError) as exc:
        # Seen by the server when a write fails, or by the admission check between segments.
        logger.info(
            "client closed the stream after %d segments (%.1f of %.1f s); transcription stopped",
            len(decoded),
            decoded[-1].end if decoded else 0.0,
            info.duration,
        )
        if isinstance(exc, GeneratorExit):
            raise
        return  # nobody is reading: no error event, no [DONE]
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report it in the stream
        yield error_event(exc, "transcription")
    finally:
        close_iterator(segments)  # a no-op once it is exhausted
    yield sse("[DONE]")


def stream_transcript(
    info: TranscriptionInfo,
    segments: Iterator[Segment],
    *,
    counter: TokenCounter | None = None,
    prompt: str | None = None,
    logprobs: bool = False,
    languages: bool = False,
) -> Response:
    events = transcript_events(
        info, segments, counter=counter, prompt=prompt, logprobs=logprobs, languages=languages
    )
    return sse_response(events)
