"""`/v1/chat/completions` with audio input, without an upstream LLM, driven by the OpenAI SDK."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path
from typing import Any

import av
import openai
import pytest

from tests.text import JFK_REFERENCE, word_errors
from whisper_api.web.chat import NO_UPSTREAM_REPLY

JFK_SECONDS = 11.0
HOTWORDS_SECONDS = 4.0


def _audio_part(data: bytes, fmt: str) -> dict[str, Any]:
    return {"type": "input_audio", "input_audio": {"data": base64.b64encode(data).decode(), "format": fmt}}


def _ask(*parts: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "What is in this recording?"}, *parts]}]


@pytest.fixture(scope="module")
def hotwords_mp3(audio_dir: Path) -> bytes:
    return (audio_dir / "hotwords.mp3").read_bytes()


def test_text_modality_answers_with_the_transcript_as_content(
    openai_client: openai.OpenAI, jfk_wav: bytes
) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o-audio-preview", messages=_ask(_audio_part(jfk_wav, "wav"))
    )
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.audio is None
    assert word_errors(JFK_REFERENCE, choice.message.content) <= 3


def test_text_and_audio_modalities_speak_the_answer_and_put_its_text_in_the_transcript(
    openai_client: openai.OpenAI, jfk_wav: bytes
) -> None:
    completion = openai_client.chat.completions.create(
        model="gpt-4o-audio-preview",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        messages=_ask(_audio_part(jfk_wav, "wav")),
    )
    message = completion.choices[0].message
    assert message.content is None
    assert word_errors(JFK_REFERENCE, message.audio.transcript) <= 3
    assert message.audio.id.startswith("audio_")
    spoken = base64.b64decode(message.audio.data)
    with av.open(io.BytesIO(spoken)) as container:
        stream = container.streams.audio[0]
        seconds = sum(f.samples for f in container.decode(stream)) / stream.sample_rate
        assert (stream.sample_rate, stream.channels) == (24000, 1)
    assert 4 < seconds < 15  # 22 words spoken
    heard = openai_client.audio.transcriptions.create(model="whisper-1", file=("answer.wav", spoken)).text
    assert word_errors(message.audio.transcript, heard) <= 3


def test_usage_counts_the_audio_and_text_that_were_really_sent(
    openai_client: openai.OpenAI, jfk_wav: bytes, hotwords_mp3: bytes
) -> None:
    short = openai_client.chat.completions.create(
        model="whisper-1", messages=_ask(_audio_part(hotwords_mp3, "mp3"))
    ).usage
    both = openai_client.chat.completions.create(
        model="whisper-1", messages=_ask(_audio_part(hotwords_mp3, "mp3"), _audio_part(jfk_wav, "wav"))
    ).usage
    assert short.prompt_tokens_details.audio_tokens == math.ceil(HOTWORDS_SECONDS * 50)
    assert both.prompt_tokens_details.audio_tokens == math.ceil((HOTWORDS_SECONDS + JFK_SECONDS) * 50)
    question_tokens = short.prompt_tokens - short.prompt_tokens_details.audio_tokens
    assert question_tokens == both.prompt_tokens - both.prompt_tokens_details.audio_tokens > 0
    assert both.completion_tokens > short.completion_tokens + 15  # jfk adds about 24 words
    assert both.total_tokens == both.prompt_tokens + both.completion_tokens


def test_several_audio_parts_are_transcribed_in_order_one_paragraph_each(
    openai_client: openai.OpenAI, jfk_wav: bytes, hotwords_mp3: bytes
) -> None:
    content = (
        openai_client.chat.completions.create(
            model="whisper-1",
            messages=[
                {"role": "user", "content": [_audio_part(hotwords_mp3, "mp3")]},
                {"role": "user", "content": [_audio_part(jfk_wav, "wav")]},
            ],
        )
        .choices[0]
        .message.content
    )
    first, second = content.split("\n\n")
    assert "folder" in first.lower()
    assert word_errors(JFK_REFERENCE, second) <= 3


def test_text_only_request_without_upstream_gets_a_well_formed_reply(openai_client: openai.OpenAI) -> None:
    # Dify's credential check for an OpenAI-API-compatible LLM sends exactly this.
    completion = openai_client.chat.completions.create(
        model="whisper-1", max_tokens=50, messages=[{"role": "user", "content": "ping"}]
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == NO_UPSTREAM_REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens == 1 and completion.usage.prompt_tokens_details.audio_tokens == 0


def test_stream_sends_transcript_chunks_then_stop_then_usage(
    openai_client: openai.OpenAI, jfk_wav: bytes
) -> None:
    messages = _ask(_audio_part(jfk_wav, "wav"))
    whole = openai_client.chat.completions.create(model="whisper-1", messages=messages)
    chunks = list(
        openai_client.chat.completions.create(
            model="whisper-1", messages=messages, stream=True, stream_options={"include_usage": True}
        )
    )
    assert len({c.id for c in chunks}) == 1
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    usage_chunk, finish_chunk, content_chunks = chunks[-1], chunks[-2], chunks[:-2]
    assert usage_chunk.choices == [] and usage_chunk.usage == whole.usage
    assert finish_chunk.choices[0].finish_reason == "stop" and finish_chunk.usage is None
    assert content_chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].finish_reason is None for c in content_chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in content_chunks)
    assert len(content_chunks) >= 3  # role, then one chunk per decoded segment
    assert streamed == whole.choices[0].message.content


def test_stream_with_audio_modality_sends_transcript_in_audio_deltas(
    openai_client: openai.OpenAI, jfk_wav: bytes
) -> None:
    chunks = list(
        openai_client.chat.completions.create(
            model="whisper-1",
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "pcm16"},
            messages=_ask(_audio_part(jfk_wav, "wav")),
            stream=True,
        )
    )
    audio = [c.choices[0].delta.audio for c in chunks if c.choices[0].delta.audio is not None]
    transcript = "".join(a.transcript or "" for a in audio)
    assert word_errors(JFK_REFERENCE, transcript) <= 3
    assert all(c.choices[0].delta.content is None for c in chunks)
    assert len({a.id for a in audio if a.id}) == 1
    pcm = base64.b64decode("".join(a.data or "" for a in audio))  # node joins the pieces the same way
    assert len(pcm) % 2 == 0 and 4 < len(pcm) / 2 / 24000 < 15  # 24 kHz 16-bit mono, 22 words
    assert sum(1 for a in audio if a.data) >= 2  # sent sentence by sentence
    assert any(a.expires_at for a in audio)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"data": "not base64!", "format": "wav"}, "messages[0].content[1].input_audio.data"),
        ({"data": "UklGRg==", "format": "ogg"}, "messages[0].content[1].input_audio.format"),
        ({"data": base64.b64encode(b"hello, this is text").decode(), "format": "wav"},
         "messages[0].content[1].input_audio.data"),
        ({"format": "wav"}, "messages[0].content[1].input_audio.data"),
    ],
    ids=["invalid-base64", "format-not-wav-or-mp3", "undecodable-audio", "missing-data"],
)  # fmt: skip
def test_bad_audio_part_is_a_400_naming_the_field(
    openai_client: openai.OpenAI, part: dict[str, str], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model="whisper-1", messages=_ask({"type": "input_audio", "input_audio": part})
        )
    assert caught.value.param == param
    assert caught.value.type == "invalid_request_error"


def test_no_messages_is_a_400_naming_messages(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(model="whisper-1", messages=[])
    assert caught.value.param == "messages"


def test_unknown_model_is_a_404_naming_model(openai_client: openai.OpenAI, jfk_wav: bytes) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(model="llama-3-70b", messages=_ask(_audio_part(jfk_wav, "wav")))
    assert caught.value.param == "model"
    assert caught.value.code == "model_not_found"


@pytest.mark.parametrize(
    ("audio", "param"),
    [
        (None, "audio"),
        ({"voice": "nobody", "format": "wav"}, "audio.voice"),
        ({"voice": "alloy", "format": "ogg"}, "audio.format"),
        ({"format": "wav"}, "audio.voice"),
    ],
)
def test_bad_audio_output_settings_are_a_400_naming_the_field(
    openai_client: openai.OpenAI, jfk_wav: bytes, audio: dict[str, Any] | None, param: str
) -> None:
    extra = {} if audio is None else {"audio": audio}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(
            model="whisper-1",
            modalities=["text", "audio"],
            messages=_ask(_audio_part(jfk_wav, "wav")),
            **extra,
        )
    assert caught.value.param == param
