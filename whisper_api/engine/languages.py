"""The languages Whisper knows: ISO code to the lower-case English name OpenAI returns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

LANGUAGES: dict[str, str] = {
    "en": "english", "zh": "chinese", "de": "german", "es": "spanish", "ru": "russian",
    "ko": "korean", "fr": "french", "ja": "japanese", "pt": "portuguese", "tr": "turkish",
    "pl": "polish", "ca": "catalan", "nl": "dutch", "ar": "arabic", "sv": "swedish",
    "it": "italian", "id": "indonesian", "hi": "hindi", "fi": "finnish", "vi": "vietnamese",
    "he": "hebrew", "uk": "ukrainian", "el": "greek", "ms": "malay", "cs": "czech",
    "ro": "romanian", "da": "danish", "hu": "hungarian", "ta": "tamil", "no": "norwegian",
    "th": "thai", "ur": "urdu", "hr": "croatian", "bg": "bulgarian", "lt": "lithuanian",
    "la": "latin", "mi": "maori", "ml": "malayalam", "cy": "welsh", "sk": "slovak",
    "te": "telugu", "fa": "persian", "lv": "latvian", "bn": "bengali", "sr": "serbian",
    "az": "azerbaijani", "sl": "slovenian", "kn": "kannada", "et": "estonian", "mk": "macedonian",
    "br": "breton", "eu": "basque", "is": "icelandic", "hy": "armenian", "ne": "nepali",
    "mn": "mongolian", "bs": "bosnian", "kk": "kazakh", "sq": "albanian", "sw": "swahili",
    "gl": "galician", "mr": "marathi", "pa": "punjabi", "si": "sinhala", "km": "khmer",
    "sn": "shona", "yo": "yoruba", "so": "somali", "af": "afrikaans", "oc": "occitan",
    "ka": "georgian", "be": "belarusian", "tg": "tajik", "sd": "sindhi", "gu": "gujarati",
    "am": "amharic", "yi": "yiddish", "lo": "lao", "uz": "uzbek", "fo": "faroese",
    "ht": "haitian creole", "ps": "pashto", "tk": "turkmen", "nn": "nynorsk", "mt": "maltese",
    "sa": "sanskrit", "lb": "luxembourgish", "my": "myanmar", "bo": "tibetan", "tl": "tagalog",
    "mg": "malagasy", "as": "assamese", "tt": "tatar", "haw": "hawaiian", "ln": "lingala",
    "ha": "hausa", "ba": "bashkir", "jw": "javanese", "su": "sundanese", "yue": "cantonese",
}  # fmt: skip

_BY_NAME = {name: code for code, name in LANGUAGES.items()}
# Names and codes people use that Whisper spells differently.
_ALIASES = {
    "jv": "jw", "iw": "he", "nb": "no", "fil": "tl", "burmese": "my", "castilian": "es",
    "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb", "moldavian": "ro", "moldovan": "ro",
    "pushto": "ps", "panjabi": "pa", "sinhalese": "si", "valencian": "ca", "mandarin": "zh",
}  # fmt: skip


def normalise_language(value: str) -> str | None:
    """Whisper's code for `en`, `en-US`, `EN_gb`, `English` or `german`; None when unknown."""
    key = value.strip().lower().replace("_", "-")
    if key in LANGUAGES:
        return key
    if key in _BY_NAME:
        return _BY_NAME[key]
    if key in _ALIASES:
        return _ALIASES[key]
    base = key.split("-", 1)[0]
    if base != key:
        return normalise_language(base)
    return None


def language_name(code: str) -> str:
    """The lower-case English name OpenAI returns in verbose_json (`en` -> `english`)."""
    return LANGUAGES.get(code, code)


def pick_language(probabilities: Iterable[tuple[str, float]], allowed: Sequence[str]) -> tuple[str, float]:
    """The most likely language among `allowed` (all when empty), with its probability."""
    candidates = [(code, p) for code, p in probabilities if not allowed or code in allowed]
    if not candidates:
        return (allowed[0] if allowed else "en"), 0.0
    return max(candidates, key=lambda pair: pair[1])


#: A window's detected language replaces the current one only this sure (else the window keeps it).
SWITCH_MIN_PROBABILITY = 0.5


@dataclass
class LanguageSwitch:
    """One request's language, window by window, when the request named none.

    Each window's detected language (among `allowed` when given) is used when the model is sure of
    it; an unsure window (noise, a few words, a mixed window) keeps the language before it. Started
    with no language, the first window's detection decides, however unsure (as Whisper decides a
    file's language from its first window): `first` keeps that detection for the transcript.
    """

    current: str | None
    allowed: tuple[str, ...] = ()
    min_probability: float = SWITCH_MIN_PROBABILITY
    #: the first window's language and its probability, once a window was detected
    first: tuple[str, float] | None = None

    def choose(self, probabilities: Iterable[tuple[str, float]]) -> str:
        """The language to decode the next window in, from its detection's probabilities."""
        code, probability = pick_language(probabilities, self.allowed)
        if self.first is None:
            self.first = (code, probability)
            if self.current is None:
                self.current = code
        if probability >= self.min_probability:
            self.current = code
        return self.current or code
