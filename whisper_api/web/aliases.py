"""OpenAI model names that clients hard-code (n8n sends `whisper-1`), and the local models serving them."""

from __future__ import annotations

from whisper_api.config import Settings

OPENAI_ALIASES: tuple[str, ...] = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-transcribe",
    "gpt-4o-transcribe-diarize",
)


def alias_targets(settings: Settings) -> dict[str, str]:
    """Every alias and its local model: OpenAI's names serve the default model unless configured."""
    return {**dict.fromkeys(OPENAI_ALIASES, settings.model), **settings.alias_map}


def resolve_model_name(requested: str, settings: Settings) -> str:
    """The local model behind a requested name."""
    name = requested.strip()
    return alias_targets(settings).get(name, name)
