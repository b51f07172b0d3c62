"""`stream=true`: server-sent events, one `transcript.text.delta` per decoded segment.

Nothing is buffered here: each event is yielded as soon as the engine hands over a segment, and
gunicorn's threaded worker writes it at once. When the client goes away, gunicorn closes this
generator; closing it closes the engine's segment iterator, which stops the decoding.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Protocol, TypeVar

from flask import Response

from whisper_api.engine.tokens import TokenCounter, audio_tokens
from whisper_api.engine.types import Segment, TranscriptionInfo
from whisper_api.web.diarized import render_diarized_segment, segment_id
from whisper_api.web.formatting import render_languages, render_logprobs
from whisper_api.web.responses import event_stream, sse, sse_response

T_co = TypeVar("T_co", covariant=True)


class ClosableStream(Protocol[T_co]):
    """Items that stop being produced, and free what produces them, on `close`."""

    def __iter__(self) -> Iterator[T_co]: ...

    def close(self) -> None: ...


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
    segments: Iterable[Segment],
    *,
    counter: TokenCounter | None = None,
    prompt: str | None = None,
    logprobs: bool = False,
    languages: bool = False,
) -> Iterator[str]:
    """Deltas as segments are decoded, one `done` with the whole text, then `[DONE]`.

    With `logprobs`, each delta and the `done` event carry their tokens' log-probabilities;
    diarized segments (a `speaker` set) also get a `transcript.text.segment` event each.
    """
    decoded: list[Segment] = []

    def progress() -> str:
        until = decoded[-1].end if decoded else 0.0
        return f" after {len(decoded)} segments ({until:.1f} of {info.duration:.1f} s)"

    frames = _transcript_frames(
        info, segments, decoded, counter=counter, prompt=prompt, logprobs=logprobs, languages=languages
    )
    return event_stream(frames, source=segments, what="transcription", progress=progress)


def _transcript_frames(
    info: TranscriptionInfo,
    segments: Iterable[Segment],
    decoded: list[Segment],
    *,
    counter: TokenCounter | None,
    prompt: str | None,
    logprobs: bool,
    languages: bool,
) -> Iterator[str]:
    parts: list[str] = []
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
        done["languages"] = render_languages(info, decoded)
    if counter is not None:
        done["usage"] = token_usage(info, decoded, counter, prompt)
    yield sse(done)


def stream_transcript(
    info: TranscriptionInfo,
    stream: ClosableStream[Segment],
    *,
    counter: TokenCounter | None = None,
    prompt: str | None = None,
    logprobs: bool = False,
    languages: bool = False,
) -> Response:
    """The SSE response for a transcription; it owns `stream` (and its slot) and closes it at the end."""
    events = transcript_events(
        info, stream, counter=counter, prompt=prompt, logprobs=logprobs, languages=languages
    )
    return sse_response(events, on_close=stream.close)
