"""The real server (gunicorn, tiny.en) driven by the official OpenAI Python SDK."""

from __future__ import annotations

import io
from pathlib import Path

import openai
import pytest
import requests
import srt
import webvtt

from tests.conftest import SLASHED_MODEL_ID
from tests.support.media import CONTAINERS, encode, speech_samples
from tests.text import JFK_REFERENCE, word_errors


def test_json_transcript_of_jfk(openai_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as fh:
        result = openai_client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert word_errors(JFK_REFERENCE, result.text) <= 2
    assert not result.text.startswith(" ")
    assert result.usage.type == "duration" and result.usage.seconds == 11


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_text_formats_come_back_as_plain_strings(
    openai_client: openai.OpenAI, jfk_bytes: bytes, fmt: str
) -> None:
    raw = openai_client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("jfk.flac", jfk_bytes), response_format=fmt
    )
    assert raw.headers["content-type"] == "text/plain; charset=utf-8"
    body = raw.parse()
    assert isinstance(body, str)
    if fmt == "srt":
        subtitles = list(srt.parse(body))
        assert subtitles and subtitles[-1].end.total_seconds() == pytest.approx(11.0, abs=0.5)
        text = " ".join(s.content for s in subtitles)
    elif fmt == "vtt":
        captions = webvtt.from_buffer(io.StringIO(body)).captions
        assert captions
        text = " ".join(c.text for c in captions)
    else:
        text = body
    assert word_errors(JFK_REFERENCE, text) <= 2


def test_verbose_json_with_word_and_segment_timestamps(
    openai_client: openai.OpenAI, jfk_bytes: bytes
) -> None:
    result = openai_client.audio.transcriptions.create(
        model="whisper-1",
        file=("jfk.flac", jfk_bytes),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english"
    assert result.duration == pytest.approx(11.0)
    words = result.words
    assert [w.word for w in words][:4] == ["And", "so", "my", "fellow"]
    assert all(w.word == w.word.strip(" ,.?!") for w in words)
    starts = [w.start for w in words]
    assert starts == sorted(starts) and all(w.end >= w.start for w in words)
    assert words[-1].end == pytest.approx(10.5, abs=0.7)  # "country." ends near 10.5 s
    assert result.segments and result.segments[0].id == 0
    segment = result.segments[0]
    assert segment.tokens and all(isinstance(t, int) for t in segment.tokens)
    assert -2 < segment.avg_logprob < 0 and 0 <= segment.no_speech_prob <= 1
    assert segment.compression_ratio > 0 and segment.temperature == 0.0


def test_word_only_granularity_omits_segments(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = openai_client.audio.transcriptions.create(
        model="whisper-1",
        file=("jfk.flac", jfk_bytes),
        response_format="verbose_json",
        timestamp_granularities=["word"],
    )
    assert result.words and getattr(result, "segments", None) is None


def test_prompt_steers_spelling(openai_client: openai.OpenAI, audio_dir: Path) -> None:
    data = (audio_dir / "hotwords.mp3").read_bytes()
    plain = openai_client.audio.transcriptions.create(model="tiny.en", file=("h.mp3", data))
    prompted = openai_client.audio.transcriptions.create(
        model="tiny.en", file=("h.mp3", data), prompt="ComfyUI"
    )
    assert "ComfyUI" not in plain.text
    assert "ComfyUI" in prompted.text


@pytest.mark.parametrize("ext", sorted(CONTAINERS))
def test_every_container_decodes_whatever_the_name_says(
    openai_client: openai.OpenAI, jfk_bytes: bytes, ext: str
) -> None:
    container, codec = CONTAINERS[ext]
    data = encode(speech_samples(jfk_bytes), container, codec)
    # Misleading name and content type: detection is by content.
    result = openai_client.audio.transcriptions.create(
        model="whisper-1", file=("upload.txt", data, "text/plain")
    )
    assert word_errors(JFK_REFERENCE, result.text) <= 3, (ext, result.text)


def test_unknown_model_raises_not_found(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.audio.transcriptions.create(model="whisper-9000", file=("a.flac", jfk_bytes))
    assert caught.value.code == "model_not_found"


def test_text_file_named_wav_raises_bad_request(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.audio.transcriptions.create(
            model="whisper-1", file=("speech.wav", b"hello, I am not audio\n" * 50, "audio/wav")
        )
    assert caught.value.param == "file"


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK deprecates translations
def test_english_only_model_refuses_translation(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    with pytest.raises(openai.BadRequestError):
        openai_client.audio.translations.create(model="tiny.en", file=("a.flac", jfk_bytes))


def test_models_list_and_retrieve_with_slash(openai_client: openai.OpenAI, server_url: str) -> None:
    ids = {m.id for m in openai_client.models.list()}
    assert {"tiny.en", "whisper-1", SLASHED_MODEL_ID} <= ids
    assert openai_client.models.retrieve(SLASHED_MODEL_ID).id == SLASHED_MODEL_ID  # sent as %2F
    raw = requests.get(f"{server_url}/v1/models/{SLASHED_MODEL_ID}", timeout=10)  # sent raw
    assert raw.status_code == 200 and raw.json()["id"] == SLASHED_MODEL_ID
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("nope")


def test_model_with_slash_transcribes(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = openai_client.audio.transcriptions.create(model=SLASHED_MODEL_ID, file=("a.flac", jfk_bytes))
    assert word_errors(JFK_REFERENCE, result.text) <= 2


def test_health_and_ready(server_url: str) -> None:
    assert requests.get(server_url + "/health", timeout=5).json() == {"status": "ok"}
    ready = requests.get(server_url + "/ready", timeout=5).json()
    assert ready["status"] == "ready" and ready["default_model"] == "tiny.en"
    assert "tiny.en" in ready["loaded"]


def test_long_prompt_is_truncated_not_rejected(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    prompt = "Kennedy speeches, inaugural address, 1961. " * 500  # ~5,000 tokens, Whisper keeps 223
    result = openai_client.audio.transcriptions.create(
        model="whisper-1", file=("jfk.flac", jfk_bytes), prompt=prompt
    )
    assert word_errors(JFK_REFERENCE, result.text) <= 3
