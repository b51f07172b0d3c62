"""OpenAI's chat completion shapes: whole completions, stream chunks and usage."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Usage:
    """Token counts of one chat completion (see docs/streaming-and-chat.md for how they are counted)."""

    text_tokens: int
    audio_tokens: int
    completion_tokens: int

    @property
    def prompt_tokens(self) -> int:
        return self.text_tokens + self.audio_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": self.audio_tokens},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def add_audio_tokens(usage: Any, audio_tokens: int) -> Any:
    """An upstream's usage plus the audio this server turned into its transcript text."""
    if not isinstance(usage, dict) or not audio_tokens:
        return usage
    merged = dict(usage)
    for key in ("prompt_tokens", "total_tokens"):
        if isinstance(merged.get(key), int):
            merged[key] += audio_tokens
    details = merged.get("prompt_tokens_details")
    details = dict(details) if isinstance(details, dict) else {}
    details["audio_tokens"] = int(details.get("audio_tokens") or 0) + audio_tokens
    merged["prompt_tokens_details"] = details
    return merged


@dataclass
class Reply:
    """The identity of one answer, shared by all of its chunks."""

    model: str
    audio_out: bool  # modalities ["text", "audio"]: the text goes into message.audio.transcript
    id: str = field(default_factory=completion_id)
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def audio_id(self) -> str:
        return "audio_" + self.id.removeprefix("chatcmpl-")

    def audio_block(self, transcript: str, data: str = "") -> dict[str, Any]:
        # The audio is not kept on the server (a later turn cannot refer to it by id): it expires at once.
        return {"id": self.audio_id, "expires_at": self.created, "data": data, "transcript": transcript}

    def message(self, text: str, audio_data: str = "") -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if self.audio_out:
            message["content"] = None
            message["audio"] = self.audio_block(text, audio_data)
        return message

    def completion(self, text: str, usage: dict[str, Any] | None, audio_data: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": self.message(text, audio_data),
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
        }
        if usage is not None:
            body["usage"] = usage
        return body

    def chunk(
        self, delta: dict[str, Any], *, finish_reason: str | None = None, include_usage: bool = False
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None
        return body

    def first_delta(self) -> dict[str, Any]:
        return {"role": "assistant", "content": None if self.audio_out else ""}

    def text_delta(self, text: str, *, first: bool) -> dict[str, Any]:
        if not self.audio_out:
            return {"content": text}
        audio: dict[str, Any] = {"transcript": text}
        if first:
            audio = {"id": self.audio_id, **audio}
        return {"audio": audio}

    def usage_chunk(self, usage: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": usage,
        }


def to_audio_reply(message: dict[str, Any], reply: Reply, speak: Callable[[str], str]) -> dict[str, Any]:
    """An upstream's text message re-shaped for modalities ["text", "audio"], `speak` giving its audio."""
    if not reply.audio_out or not isinstance(message, dict):
        return message
    text = message.get("content")
    if not isinstance(text, str):
        return message
    return {**message, "content": None, "audio": reply.audio_block(text, speak(text))}


def to_audio_delta(delta: dict[str, Any], reply: Reply, *, first: bool) -> tuple[dict[str, Any], bool]:
    """An upstream's text delta re-shaped for audio output; says whether the audio id was sent."""
    if not reply.audio_out or not isinstance(delta, dict) or not isinstance(delta.get("content"), str):
        return delta, False
    rest = {k: v for k, v in delta.items() if k != "content"}
    if "role" in rest:
        rest["content"] = None
    if not delta["content"]:
        return rest, False
    return {**rest, **reply.text_delta(delta["content"], first=first)}, first
