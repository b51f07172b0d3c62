"""The embedded default model (multilingual base) on the real server: accuracy, languages, translation."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.support.media import speech_samples, wav_bytes
from tests.text import JFK_REFERENCE, word_errors

pytestmark = pytest.mark.multilingual

GERMAN_FROM = 31  # seconds: multilingual.mp3 reads the licence in English, then in German


@pytest.fixture(scope="module")
def german_wav(audio_dir) -> bytes:
    samples = speech_samples((audio_dir / "multilingual.mp3").read_bytes())
    return wav_bytes(samples[GERMAN_FROM * 16_000 :])


def test_default_model_gets_jfk_within_one_word(base_openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = base_openai_client.audio.transcriptions.create(model="whisper-1", file=("jfk.flac", jfk_bytes))
    assert word_errors(JFK_REFERENCE, result.text) <= 1, result.text


def test_detects_german(base_openai_client: openai.OpenAI, german_wav: bytes) -> None:
    result = base_openai_client.audio.transcriptions.create(
        model="whisper-1", file=("de.wav", german_wav), response_format="verbose_json"
    )
    assert result.language == "german"
    assert "Software" in result.text and "Rechte" in result.text


def test_language_field_is_honoured(base_openai_client: openai.OpenAI, german_wav: bytes) -> None:
    result = base_openai_client.audio.transcriptions.create(
        model="base", file=("de.wav", german_wav), language="de", response_format="verbose_json"
    )
    assert result.language == "german" and "Software" in result.text


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK deprecates translations
def test_translates_german_speech_to_english(base_openai_client: openai.OpenAI, german_wav: bytes) -> None:
    result = base_openai_client.audio.translations.create(
        model="whisper-1", file=("de.wav", german_wav), response_format="verbose_json"
    )
    assert result.language == "english"
    words = set(result.text.lower().replace(",", " ").replace(".", " ").split())
    assert {"software", "rights"} <= words or {"software", "right"} <= words, result.text
    assert not {"die", "und", "der"} & words


def test_each_window_is_written_in_the_language_spoken(
    base_openai_client: openai.OpenAI, audio_dir: Path
) -> None:
    """multilingual.mp3 reads the licence in English, then in German: with no `language`, the
    German window is German text (not an English paraphrase), and gpt-transcribe's `languages`
    lists both, in order."""
    data = (audio_dir / "multilingual.mp3").read_bytes()
    verbose = base_openai_client.audio.transcriptions.create(
        model="whisper-1", file=("ml.mp3", data), response_format="verbose_json"
    )
    assert verbose.language == "english"
    english = " ".join(s.text for s in verbose.segments if s.start < GERMAN_FROM - 2)
    german = " ".join(s.text for s in verbose.segments if s.start >= GERMAN_FROM - 2)
    assert "Permission is hereby granted" in english
    assert "Software" in german and ("Rechte" in german or "Recht" in german), german
    result = base_openai_client.audio.transcriptions.create(model="gpt-transcribe", file=("ml.mp3", data))
    assert [language.code for language in result.languages] == ["en", "de"], result.languages


def test_languages_restrict_what_each_window_may_switch_to(
    base_openai_client: openai.OpenAI, audio_dir: Path
) -> None:
    data = (audio_dir / "multilingual.mp3").read_bytes()
    result = base_openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("ml.mp3", data), languages=["en", "fr"]
    )
    assert [language.code for language in result.languages] == ["en"], result.languages
