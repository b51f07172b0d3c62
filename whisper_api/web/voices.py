"""OpenAI's speech model and voice names mapped onto the voices installed here."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from whisper_api.config import Settings
from whisper_api.engine.voices import HOW_TO_ADD_A_VOICE, VoiceCatalog, VoiceLocation
from whisper_api.errors import InvalidRequestError, ModelNotFoundError

#: OpenAI's text-to-speech models; all are served by the local voice engine.
SPEECH_MODEL_ALIASES: tuple[str, ...] = (
    "tts-1",
    "tts-1-hd",
    "tts-1-1106",
    "tts-1-hd-1106",
    "gpt-4o-mini-tts",
    "gpt-4o-mini-tts-2025-03-20",
    "gpt-4o-mini-tts-2025-12-15",
)
#: OpenAI's built-in voice names (speech and chat audio output).
OPENAI_VOICES: tuple[str, ...] = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse", "marin", "cedar",
)  # fmt: skip

#: Unicode script (first word of a letter's name) each language's voice reads; default LATIN.
_SCRIPT_OF_LANGUAGE = {
    "ru": "CYRILLIC", "uk": "CYRILLIC", "bg": "CYRILLIC", "sr": "CYRILLIC", "kk": "CYRILLIC",
    "mk": "CYRILLIC", "be": "CYRILLIC", "zh": "CJK", "ja": "CJK", "ko": "HANGUL", "ar": "ARABIC",
    "fa": "ARABIC", "ur": "ARABIC", "el": "GREEK", "he": "HEBREW", "hi": "DEVANAGARI",
    "ne": "DEVANAGARI", "th": "THAI", "ka": "GEORGIAN", "hy": "ARMENIAN",
}  # fmt: skip
_KANA = {"HIRAGANA", "KATAKANA"}


@dataclass(frozen=True)
class VoiceChoice:
    """The installed voice a request speaks with, and the name the client used for it."""

    location: VoiceLocation
    requested: str


def resolve_voice(model: str, voice: str, catalog: VoiceCatalog, settings: Settings) -> VoiceChoice:
    """The voice for (`model`, `voice`); unknown model 404, unknown voice 400 naming `voice`."""
    installed = catalog.require_any()
    by_name = {v.name: v for v in installed}
    model = model.strip()
    if model not in SPEECH_MODEL_ALIASES and model not in by_name:
        raise ModelNotFoundError(
            model, "Speech models here: " + ", ".join(SPEECH_MODEL_ALIASES + tuple(by_name))
        )
    if voice in by_name:
        return VoiceChoice(by_name[voice], voice)
    if voice.lower() in OPENAI_VOICES:
        if model in by_name:  # the model names the voice; `voice` is OpenAI's required filler
            return VoiceChoice(by_name[model], voice)
        mapped = voice_map(settings).get(voice.lower()) or settings.default_voice or installed[0].name
        if mapped not in by_name:
            raise InvalidRequestError(
                f"Voice '{voice}' is mapped to '{mapped}', which is not installed. " + HOW_TO_ADD_A_VOICE,
                param="voice",
            )
        return VoiceChoice(by_name[mapped], voice)
    raise InvalidRequestError(
        f"Unknown voice '{voice}'. Use one of OpenAI's voices ({', '.join(OPENAI_VOICES)}) or an "
        f"installed voice ({', '.join(by_name)}). " + HOW_TO_ADD_A_VOICE,
        param="voice",
    )


def voice_map(settings: Settings) -> dict[str, str]:
    """WHISPER_API_VOICE_MAP as {openai_name: installed_voice}."""
    pairs = (item.split("=", 1) for item in settings.voice_map if "=" in item)
    return {key.strip().lower(): value.strip() for key, value in pairs}


def check_speakable(text: str, choice: VoiceChoice, catalog: VoiceCatalog) -> VoiceChoice:
    """The chosen voice, or another installed one that reads the text's script, or a 400."""
    script = dominant_script(text)
    if script is None or script == _script(choice.location.language_code):
        return choice
    for other in catalog.locations():
        if _script(other.language_code) == script:
            return VoiceChoice(other, choice.requested)
    shown = script if script == "CJK" else script.title()
    raise InvalidRequestError(
        f"The input is written in {shown} script, and no installed voice speaks a "
        f"language written in it (installed: {', '.join(v.language for v in catalog.locations())}). "
        + HOW_TO_ADD_A_VOICE,
        param="input",
        code="unsupported_language",
    )


def dominant_script(text: str) -> str | None:
    """The Unicode script of most letters in `text` (kana counts as CJK), or None without letters."""
    counts: dict[str, int] = {}
    for char in text:
        if not char.isalpha():
            continue
        script = unicodedata.name(char, "UNKNOWN").split(" ")[0]
        script = "CJK" if script in _KANA else script
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda s: counts[s])


def _script(language_code: str) -> str:
    return _SCRIPT_OF_LANGUAGE.get(language_code, "LATIN")
