"""`POST /v1/chat/completions`: audio parts become transcripts; an upstream LLM may answer them.

Without CHAT_UPSTREAM_BASE_URL the reply is the transcript of the audio parts (joined by a blank
line), or a short note for text-only requests (Dify's "ping" credential check must succeed).
With it, every `input_audio` part is replaced by a text part holding its transcript and the
conversation goes to that OpenAI-compatible server, streamed or not.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, request

from whisper_api.engine.tokens import TokenCounter, audio_tokens
from whisper_api.engine.types import Audio, Segment, TranscriptionOptions, collect
from whisper_api.errors import ModelNotFoundError
from whisper_api.web.aliases import OPENAI_ALIASES, resolve_model_name
from whisper_api.web.apidoc import JSON, SSE, documented
from whisper_api.web.body import load_json_body
from whisper_api.web.chat_audio import Speaker
from whisper_api.web.chat_format import Reply, Usage, add_audio_tokens, to_audio_delta, to_audio_reply
from whisper_api.web.chat_schemas import (
    ChatChunkEventSchema,
    ChatCompletionObjectSchema,
    ChatCompletionSchema,
    load_chat_request,
)
from whisper_api.web.pipeline import Job
from whisper_api.web.responses import close_iterator, event_stream, json_response, sse, sse_response
from whisper_api.web.state import AppState, get_state
from whisper_api.web.upstream import Upstream

bp = Blueprint("chat", __name__, url_prefix="/v1")

#: OpenAI's audio-input chat models; clients configured for them are served by the default model.
CHAT_AUDIO_ALIASES: tuple[str, ...] = (
    "gpt-4o-audio-preview",
    "gpt-4o-audio-preview-2024-10-01",
    "gpt-4o-audio-preview-2024-12-17",
    "gpt-4o-audio-preview-2025-06-03",
    "gpt-4o-mini-audio-preview",
    "gpt-4o-mini-audio-preview-2024-12-17",
    "gpt-audio",
    "gpt-audio-mini",
)
NO_UPSTREAM_REPLY = (
    "This server transcribes audio: send it as an input_audio content part (wav or mp3) and the "
    "reply is its transcript. No chat model is configured (CHAT_UPSTREAM_BASE_URL), so text "
    "messages are not answered."
)
PART_SEPARATOR = "\n\n"
_COMPLETION = ChatCompletionObjectSchema()


@dataclass(frozen=True)
class AudioPart:
    """One decoded `input_audio` part and where it sits in the request."""

    message: int
    part: int
    audio: Audio


@bp.post("/chat/completions")
@documented(
    "Transcribe the audio parts of a conversation (answered by the upstream LLM when one is set)",
    body=ChatCompletionSchema,
    responses={
        200: (
            "The completion; server-sent chunks when `stream=true`",
            {JSON: ChatCompletionObjectSchema, SSE: ChatChunkEventSchema},
        )
    },
    errors=(400, 404, 413, 429, 502, 503, 504),
)
def create_chat_completion() -> Response:
    state = get_state()
    # Admitted before the body is read, like an upload; released at once if it holds no audio.
    job = state.pipeline.admit(request.environ)
    with job:
        body = load_json_body(request)
        params = load_chat_request(body)
        upstream = Upstream.from_settings(state.settings)
        speaker = Speaker.for_request(state, params, request.environ)  # a bad voice is a 400 now
        whisper_name = _whisper_model(params["model"], state, upstream)
        sources = list(_audio_sources(params["messages"]))
        if not sources:
            job.close()  # nothing to transcribe: a text-only chat takes no transcription slot
        else:
            job.choose_model(whisper_name)
        parts = [AudioPart(m, p, job.decode(data, param=path)) for m, p, path, data in sources]
        options = state.pipeline.options()
        audio_total = sum(audio_tokens(p.audio.duration) for p in parts)
        audio_out = "audio" in params["modalities"]

        if upstream is not None:
            transcripts = [_transcribe(job, p, options) for p in parts]
            job.close()  # the upstream LLM's answer takes no transcription slot
            forwarded = _forward_body(body, parts, transcripts, upstream)
            reply = Reply(model=upstream.model or params["model"], audio_out=audio_out)
            if params["stream"]:
                return sse_response(_relay(upstream.stream(forwarded), reply, audio_total, speaker))
            return json_response(_from_upstream(upstream.complete(forwarded), reply, audio_total, speaker))

        reply = Reply(model=whisper_name, audio_out=audio_out)
        counter = state.pipeline.token_counter(whisper_name)
        text_tokens = _count_text(params["messages"], counter)
        if params["stream"]:
            pieces = job.stream(_part_segments(job, parts, options)) if parts else None
            frames = _transcript_frames(
                reply, pieces, counter, text_tokens, audio_total, params["include_usage"], speaker
            )
            events = event_stream(frames, source=pieces, what="chat transcription")
            return sse_response(events, on_close=pieces.close if pieces is not None else None)
        if parts:
            text = PART_SEPARATOR.join(_transcribe(job, p, options) for p in parts)
        else:
            text = NO_UPSTREAM_REPLY
    usage = _usage(counter, text_tokens, audio_total, text)
    audio_data = speaker.speak_all(text) if speaker is not None else ""  # the transcription slot is free
    return json_response(_COMPLETION.dump(reply.completion(text, usage, audio_data)))


def _whisper_model(requested: str, state: AppState, upstream: Upstream | None) -> str:
    """The Whisper model for the audio parts; unknown chat models are a 404 naming `model`."""
    registry = state.registry
    name = resolve_model_name(requested, state.settings)
    if registry.is_served(name):
        return name
    if requested in CHAT_AUDIO_ALIASES or requested in OPENAI_ALIASES:
        return registry.default_name
    if upstream is not None and (upstream.model is None or requested == upstream.model):
        return registry.default_name  # the upstream LLM's model: it decides what it serves
    raise ModelNotFoundError(requested)


def _audio_sources(messages: list[dict[str, Any]]) -> Iterator[tuple[int, int, str, bytes]]:
    """(message, part, error path, bytes) of every `input_audio` part, in order."""
    for m, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for p, part in enumerate(content):
            if part["type"] == "input_audio":
                yield m, p, f"messages[{m}].content[{p}].input_audio.data", part["input_audio"]["data"]


def _transcribe(job: Job, part: AudioPart, options: TranscriptionOptions) -> str:
    info, segments = job.transcribe(part.audio, options)
    return collect(info, segments).text


def _part_segments(
    job: Job, parts: list[AudioPart], options: TranscriptionOptions
) -> Iterator[tuple[int, Segment]]:
    """(part index, segment) across every part, decoded lazily; closing it stops the engine."""
    for index, part in enumerate(parts):
        _, segments = job.transcribe(part.audio, options)
        try:
            for segment in segments:
                yield index, segment
        finally:
            close_iterator(segments)


def _count_text(messages: list[dict[str, Any]], counter: TokenCounter | None) -> int:
    """Whisper-tokenizer tokens of every text in the conversation (roles and framing not counted)."""
    if counter is None:
        return 0
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += counter.count_text(content)
        elif isinstance(content, list):
            total += sum(counter.count_text(p.get("text", "")) for p in content if p["type"] == "text")
    return total


def _usage(
    counter: TokenCounter | None, text_tokens: int, audio_total: int, reply: str
) -> dict[str, Any] | None:
    if counter is None:
        return None
    return Usage(text_tokens, audio_total, counter.count_text(reply)).to_dict()


def _transcript_frames(
    reply: Reply,
    pieces_of_parts: Iterable[tuple[int, Segment]] | None,
    counter: TokenCounter | None,
    text_tokens: int,
    audio_total: int,
    include_usage: bool,
    speaker: Speaker | None,
) -> Iterator[str]:
    """Chunks of the transcript as segments are decoded, its audio, a `stop` chunk, usage if asked."""
    pieces: list[str] = []
    sent_id = False
    yield sse(reply.chunk(reply.first_delta(), include_usage=include_usage))
    if pieces_of_parts is None:
        pieces.append(NO_UPSTREAM_REPLY)
        yield sse(reply.chunk(reply.text_delta(NO_UPSTREAM_REPLY, first=True), include_usage=include_usage))
        sent_id = True
    current = -1
    for index, segment in pieces_of_parts or ():
        starts_part = index != current
        text = segment.text.lstrip() if starts_part else segment.text
        if not text:
            continue
        if starts_part and index > 0 and pieces:
            text = PART_SEPARATOR + text
        current = index
        pieces.append(text)
        yield sse(reply.chunk(reply.text_delta(text, first=not sent_id), include_usage=include_usage))
        sent_id = True
    if speaker is not None:
        close_iterator(pieces_of_parts)  # frees the transcription slot before speaking takes one
        for data in speaker.speak("".join(pieces)):
            audio = {"data": data} if sent_id else {"id": reply.audio_id, "data": data}
            sent_id = True
            yield sse(reply.chunk({"audio": audio}, include_usage=include_usage))
        yield sse(reply.chunk({"audio": {"expires_at": reply.created}}, include_usage=include_usage))
    yield sse(reply.chunk({}, finish_reason="stop", include_usage=include_usage))
    if include_usage:
        usage = _usage(counter, text_tokens, audio_total, "".join(pieces))
        if usage is not None:
            yield sse(reply.usage_chunk(usage))


def _forward_body(
    body: dict[str, Any], parts: list[AudioPart], transcripts: list[str], upstream: Upstream
) -> dict[str, Any]:
    """The client's request with each audio part replaced, in place, by a text part of its transcript."""
    forwarded = copy.deepcopy(body)
    for part, transcript in zip(parts, transcripts, strict=True):
        forwarded["messages"][part.message]["content"][part.part] = {"type": "text", "text": transcript}
    if upstream.model:
        forwarded["model"] = upstream.model
    # A text LLM cannot speak: audio output is re-shaped here from its text instead.
    forwarded.pop("modalities", None)
    forwarded.pop("audio", None)
    for message in forwarded["messages"]:
        if message.get("role") == "assistant" and "audio" in message:
            message.pop("audio")  # an earlier spoken answer: its id means nothing upstream
            if message.get("content") is None:
                message["content"] = ""
    return forwarded


def _from_upstream(
    data: dict[str, Any], reply: Reply, audio_total: int, speaker: Speaker | None
) -> dict[str, Any]:
    choices = data.get("choices")
    if speaker is not None and isinstance(choices, list):
        data["choices"] = [
            {**c, "message": to_audio_reply(c.get("message"), reply, speaker.speak_all)}
            if isinstance(c, dict)
            else c
            for c in choices
        ]
    if "usage" in data:
        data["usage"] = add_audio_tokens(data["usage"], audio_total)
    return data


def _relay(
    chunks: Iterator[dict[str, Any]], reply: Reply, audio_total: int, speaker: Speaker | None = None
) -> Iterator[str]:
    """The upstream's chunks as they arrive (audio output re-shaped, audio tokens added), `[DONE]`."""
    frames = _relay_frames(chunks, reply, audio_total, speaker)
    return event_stream(frames, source=chunks, what="upstream chat")


def _relay_frames(
    chunks: Iterator[dict[str, Any]], reply: Reply, audio_total: int, speaker: Speaker | None
) -> Iterator[str]:
    """With audio output, the answer's text is spoken once the upstream has finished it: its audio
    deltas go out before the upstream's `finish_reason` and usage chunks, which are held till then."""
    sent_id = False
    text: list[str] = []
    held: list[dict[str, Any]] = []
    for chunk in chunks:
        choices = chunk.get("choices")
        if speaker is not None and isinstance(choices, list):
            if held or any(isinstance(c, dict) and c.get("finish_reason") for c in choices):
                held.append(chunk)
                continue
            relayed = []
            for choice in choices:
                if isinstance(choice, dict) and "delta" in choice:
                    if choice.get("index", 0) == 0 and isinstance(choice["delta"].get("content"), str):
                        text.append(choice["delta"]["content"])
                    delta, used = to_audio_delta(choice["delta"], reply, first=not sent_id)
                    sent_id = sent_id or used
                    choice = {**choice, "delta": delta}
                relayed.append(choice)
            chunk = {**chunk, "choices": relayed}
        yield sse(_with_audio_tokens(chunk, audio_total))
    if speaker is not None:
        for data in speaker.speak("".join(text)):
            audio = {"data": data} if sent_id else {"id": reply.audio_id, "data": data}
            sent_id = True
            yield sse(reply.chunk({"audio": audio}))
        yield sse(reply.chunk({"audio": {"expires_at": reply.created}}))
        for chunk in held:
            yield sse(_with_audio_tokens(chunk, audio_total))


def _with_audio_tokens(chunk: dict[str, Any], audio_total: int) -> dict[str, Any]:
    if chunk.get("usage"):
        return {**chunk, "usage": add_audio_tokens(chunk["usage"], audio_total)}
    return chunk
