"""The same API behaviours on both engines: real gunicorn servers on tiny.en, the real OpenAI SDK."""

from __future__ import annotations

import concurrent.futures
import re
from pathlib import Path

import openai
import pytest
import requests

ENGINES = ("faster-whisper", "openai-whisper")
JFK = (
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> str:
    fixture = "server_url" if request.param == "faster-whisper" else "ow_server_url"
    return request.getfixturevalue(fixture)


@pytest.fixture
def engine_client(engine_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=engine_url + "/v1", api_key="sk-local", max_retries=0, timeout=300)


def test_json_transcript_matches_the_reference(engine_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as fh:
        result = engine_client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert words(result.text) == JFK


def test_verbose_json_has_segments_and_top_level_words(engine_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as fh:
        result = engine_client.audio.transcriptions.create(
            model="whisper-1",
            file=fh,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
        )
    assert result.language == "english"
    assert result.duration == pytest.approx(11.0, abs=0.1)
    assert [w.word.lower().strip(",.") for w in result.words] == JFK.split()
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and 0 <= starts[0] < 1.0 and result.words[-1].end <= 11.0
    assert result.segments and result.segments[0].id == 0 and result.segments[0].avg_logprob < 0


@pytest.mark.parametrize(("fmt", "pattern"), [("srt", r"^1\n00:00:00,000 --> "), ("vtt", r"^WEBVTT\n")])
def test_subtitle_formats(engine_url: str, jfk_bytes: bytes, fmt: str, pattern: str) -> None:
    response = requests.post(
        engine_url + "/v1/audio/transcriptions",
        files={"file": ("jfk.flac", jfk_bytes)},
        data={"model": "whisper-1", "response_format": fmt},
        timeout=300,
    )
    assert response.status_code == 200
    assert re.match(pattern, response.text)
    assert "ask not what your country" in response.text.lower()


def test_text_format_is_plain_text(engine_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as fh:
        text = engine_client.audio.transcriptions.create(model="whisper-1", file=fh, response_format="text")
    assert words(text) == JFK


def test_prompt_spells_a_product_name(engine_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "hotwords.mp3").open("rb") as fh:
        result = engine_client.audio.transcriptions.create(
            model="whisper-1", file=fh, prompt="ComfyUI", temperature=0.0
        )
    assert "ComfyUI" in result.text


def test_stream_ends_with_the_whole_text(engine_url: str, jfk_bytes: bytes) -> None:
    response = requests.post(
        engine_url + "/v1/audio/transcriptions",
        files={"file": ("jfk.flac", jfk_bytes)},
        data={"model": "whisper-1", "stream": "true"},
        stream=True,
        timeout=300,
    )
    events = [line for line in response.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert '"transcript.text.delta"' in events[0]
    assert words(events[-2]).find(JFK) >= 0


def test_stream_reports_token_usage(engine_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "jfk.flac").open("rb") as fh:
        stream = engine_client.audio.transcriptions.create(
            model="whisper-1", file=fh, stream=True, prompt="Kennedy"
        )
        done = [event for event in stream if event.type == "transcript.text.done"][-1]
    usage = done.usage
    assert usage is not None and usage.type == "tokens"
    assert usage.input_token_details.audio_tokens == 550  # 11 s at 50 encoder positions per second
    assert usage.input_token_details.text_tokens == 2  # "Kennedy": two tokens in both engines' vocabularies
    assert len(JFK.split()) <= usage.output_tokens <= 2 * len(JFK.split())
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_english_only_model_refuses_translation(engine_url: str, jfk_bytes: bytes) -> None:
    response = requests.post(
        engine_url + "/v1/audio/translations",
        files={"file": ("jfk.flac", jfk_bytes)},
        data={"model": "whisper-1"},
        timeout=300,
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


def test_concurrent_requests_all_succeed(engine_url: str, jfk_bytes: bytes) -> None:
    def post(_: int) -> str:
        response = requests.post(
            engine_url + "/v1/audio/transcriptions",
            files={"file": ("jfk.flac", jfk_bytes)},
            data={"model": "whisper-1", "response_format": "text"},
            timeout=300,
        )
        assert response.status_code == 200
        return words(response.text)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        assert list(pool.map(post, range(3))) == [JFK] * 3
