"""OpenAI model names that clients hard-code (n8n sends `whisper-1`), served by the default model."""

from __future__ import annotations

OPENAI_ALIASES: tuple[str, ...] = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-transcribe",
    "gpt-4o-transcribe-diarize",
)


def resolve_model_name(requested: str, default: str) -> str:
    """The local model behind a requested name: aliases map to the default model."""
    name = requested.strip()
    return default if name in OPENAI_ALIASES else name
