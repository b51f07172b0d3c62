"""`stream=true` on transcriptions and translations, driven by the official OpenAI SDK."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest
import requests

from tests.text import normalise

JFK_WORDS = "ask not what your country can do for you"


def _events(client: openai.OpenAI, audio: Path, **kwargs) -> list:
    with audio.open("rb") as fh:
        stream = client.audio.transcriptions.create(model="whisper-1", file=fh, stream=True, **kwargs)
        return list(stream)


def test_sdk_stream_yields_deltas_then_exactly_one_done(
    openai_client: openai.OpenAI, audio_dir: Path
) -> None:
    events = _events(openai_client, audio_dir / "jfk.flac")
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done"
    assert types.count("transcript.text.done") == 1
    assert set(types[:-1]) == {"transcript.text.delta"}
    assert len(types) >= 2
    done = events[-1]
    assert done.text == "".join(e.delta for e in events[:-1]).strip()
    assert JFK_WORDS in done.text.lower().replace(",", "")


def test_stream_done_text_has_the_non_streaming_transcript_s_words(
    openai_client: openai.OpenAI, audio_dir: Path
) -> None:
    """A stream's first chunk ends in the first short pause (its first words come sooner), so its
    sentences may be punctuated differently; the words are the same."""
    events = _events(openai_client, audio_dir / "jfk.flac")
    with (audio_dir / "jfk.flac").open("rb") as fh:
        whole = openai_client.audio.transcriptions.create(model="whisper-1", file=fh)
    assert normalise(events[-1].text) == normalise(whole.text)


def test_stream_done_usage_counts_audio_and_decoded_tokens(
    openai_client: openai.OpenAI, audio_dir: Path
) -> None:
    usage = _events(openai_client, audio_dir / "jfk.flac", prompt="Americans")[-1].usage
    assert usage.type == "tokens"
    assert usage.input_token_details.audio_tokens == 550  # 11.0 s at 50 encoder positions per second
    assert usage.input_token_details.text_tokens >= 1  # the prompt
    assert 15 < usage.output_tokens < 60  # about 24 words were decoded
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


def test_stream_frames_are_plain_sse_for_proxies(server_url: str, jfk_bytes: bytes) -> None:
    response = requests.post(
        server_url + "/v1/audio/transcriptions",
        data={"model": "whisper-1", "stream": "true", "response_format": "text"},
        files={"file": ("jfk.flac", jfk_bytes)},
        stream=True,
        timeout=120,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    assert response.headers["Cache-Control"] == "no-cache"
    assert "Content-Length" not in response.headers
    body = response.content.decode("utf-8")
    frames = body.split("\n\n")
    assert frames[-1] == "" and frames[-2] == "data: [DONE]"
    for frame in frames[:-2]:
        assert frame.startswith("data: ") and "\n" not in frame  # no event:, id: or retry: lines
        assert json.loads(frame[len("data: ") :])["type"].startswith("transcript.text.")


def test_stream_request_errors_before_the_stream_are_plain_json(
    openai_client: openai.OpenAI, jfk_bytes: bytes
) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        list(
            openai_client.audio.transcriptions.create(
                model="no-such-model", file=("jfk.flac", jfk_bytes), stream=True
            )
        )
    assert caught.value.body["param"] == "model"


@pytest.mark.multilingual
def test_translation_stream_parses_with_the_sdk_sse_decoder(
    base_openai_client: openai.OpenAI, jfk_bytes: bytes
) -> None:
    # The SDK's translations.create() has no `stream` argument; its generic post() and Stream do.
    stream = base_openai_client.post(
        "/audio/translations",
        body={"model": "whisper-1", "stream": True},
        files=[("file", ("jfk.flac", jfk_bytes))],
        options={"headers": {"Content-Type": "multipart/form-data"}},
        cast_to=object,
        stream=True,
        stream_cls=openai.Stream[object],
    )
    events = list(stream)
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    assert {e["type"] for e in events[:-1]} == {"transcript.text.delta"}
    assert JFK_WORDS in events[-1]["text"].lower().replace(",", "")
