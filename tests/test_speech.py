"""`/v1/audio/speech` on the real server (gunicorn, tiny.en, the packaged Piper voice), driven by
the official Python SDK; every format is decoded back with PyAV."""

from __future__ import annotations

import base64
import io
import json
import re

import av
import numpy as np
import openai
import pytest
import requests

from tests.text import word_errors

pytest.importorskip("piper", reason="text to speech needs requirements-speech.txt")

SENTENCE = "The lighthouse keeper counted seven ships before the storm arrived."
#: Held-out sentences for the round trip: written here, never recorded anywhere.
ROUND_TRIP = (
    "My neighbour painted her garden fence bright yellow last weekend.",
    "Please bring two loaves of bread and a bottle of milk from the market.",
    "The train to the coast leaves every morning at half past seven.",
    "Our team finished the bridge project three weeks ahead of schedule.",
)
#: (container rate, channels) a decoder reports per format; opus always decodes at 48 kHz.
EXPECTED_RATE = {"mp3": 24000, "opus": 48000, "aac": 24000, "flac": 24000, "wav": 24000}
CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}


def decoded(data: bytes) -> tuple[int, int, float]:
    """(sample rate, channels, seconds) of an encoded file, decoded with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.codec_context.sample_rate, stream.channels, samples / stream.sample_rate


@pytest.fixture(scope="module")
def pcm_seconds(openai_client: openai.OpenAI) -> float:
    """Length of SENTENCE as raw pcm (24 kHz s16le mono): the reference for the other formats."""
    data = openai_client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm"
    ).content
    assert len(data) % 2 == 0
    return len(data) / 2 / 24000


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
def test_every_format_decodes_to_mono_speech_of_the_right_length(
    openai_client: openai.OpenAI, pcm_seconds: float, fmt: str
) -> None:
    response = openai_client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="nova", input=SENTENCE, response_format=fmt
    )
    assert response.response.headers["content-type"] == CONTENT_TYPES[fmt]
    rate, channels, seconds = decoded(response.content)
    assert (rate, channels) == (EXPECTED_RATE[fmt], 1)
    assert 2.0 < pcm_seconds < 8.0  # a 10-word sentence
    # Piper samples phoneme durations, so two requests differ by a few percent.
    assert abs(seconds - pcm_seconds) < 0.15 * pcm_seconds


def test_pcm_is_24khz_s16le_that_whisper_transcribes(openai_client: openai.OpenAI) -> None:
    pcm = openai_client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm"
    ).content
    frame = av.AudioFrame.from_ndarray(np.frombuffer(pcm, "<i2").reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 24000
    out = io.BytesIO()
    with av.open(out, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=24000, layout="mono")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    text = openai_client.audio.transcriptions.create(model="whisper-1", file=("pcm.wav", out.getvalue())).text
    # Piper samples noise, so each request's audio differs; tiny.en has heard "keep her" for "keeper"
    # (2 errors). Misread bytes (wrong rate, endianness or width) give noise or nothing: 10+ errors.
    assert word_errors(SENTENCE, text) <= 2, text


def test_round_trip_held_out_sentences_wer_at_most_10_percent(openai_client: openai.OpenAI) -> None:
    errors = words = 0
    for sentence in ROUND_TRIP:
        wav = openai_client.audio.speech.create(
            model="tts-1-hd", voice="echo", input=sentence, response_format="wav"
        ).content
        text = openai_client.audio.transcriptions.create(model="whisper-1", file=("speech.wav", wav)).text
        errors += word_errors(sentence, text)
        words += len(sentence.split())
    assert errors / words <= 0.10, f"WER {errors / words:.1%}"


def _speech_characters(base_url: str) -> float:
    text = requests.get(base_url + "/metrics", timeout=10).text
    found = re.findall(r'^whisper_api_speech_characters_total\{voice="[^"]+"\} (\S+)$', text, re.M)
    return sum(float(v) for v in found)


def test_streaming_response_sends_audio_before_synthesis_ends(
    openai_client: openai.OpenAI, server_url: str
) -> None:
    text = " ".join(f"This is sentence number {n}, spoken while the next one is made." for n in range(12))
    before = _speech_characters(server_url)
    chunks = 0
    with openai_client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=text, response_format="mp3"
    ) as response:
        assert response.headers["content-type"] == "audio/mpeg"
        body = bytearray()
        for chunk in response.iter_bytes():
            if chunks == 0:
                # The first bytes arrived: the server has not yet synthesised the whole text.
                assert _speech_characters(server_url) - before < len(text) * 0.8
            chunks += 1
            body += chunk
    assert chunks > 1
    assert decoded(bytes(body))[2] > 20  # twelve sentences


def test_sse_stream_sends_audio_deltas_then_done_with_usage(
    openai_client: openai.OpenAI, pcm_seconds: float
) -> None:
    response = openai_client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="coral", input=SENTENCE, response_format="pcm", stream_format="sse"
    )
    assert response.response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert abs(len(audio) / 2 / 24000 - pcm_seconds) < 0.15 * pcm_seconds
    usage = events[-1]["usage"]
    assert usage["input_tokens"] > 5 and usage["output_tokens"] > 100
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_speed_two_halves_the_duration(openai_client: openai.OpenAI, pcm_seconds: float) -> None:
    fast = openai_client.audio.speech.create(
        model="tts-1", voice="alloy", input=SENTENCE, response_format="pcm", speed=2.0
    ).content
    assert 0.4 * pcm_seconds < len(fast) / 2 / 24000 < 0.6 * pcm_seconds


def test_voice_by_its_own_name_and_as_an_id_object(openai_client: openai.OpenAI) -> None:
    named = openai_client.audio.speech.create(
        model="en_US-joe-medium", voice="alloy", input="Hello.", response_format="wav"
    ).content
    by_id = openai_client.audio.speech.create(
        model="tts-1", voice={"id": "en_US-joe-medium"}, input="Hello.", response_format="wav"
    ).content
    assert decoded(named)[2] > 0.3 and decoded(by_id)[2] > 0.3


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"input": ""}, "input"),
        ({"input": "a" * 4097}, "input"),
        ({"voice": "no-such-voice"}, "voice"),
        ({"speed": 4.5}, "speed"),
        ({"speed": 0.1}, "speed"),
        ({"response_format": "ogg"}, "response_format"),
        ({"stream_format": "websocket"}, "stream_format"),
        ({"input": "这是一个中文句子"}, "input"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(openai_client: openai.OpenAI, change: dict, param: str) -> None:
    request = {"model": "tts-1", "voice": "alloy", "input": "Hello.", **change}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.audio.speech.create(**request)
    assert caught.value.param == param
    assert caught.value.body["type"] == "invalid_request_error"


def test_unknown_speech_model_is_a_404(openai_client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.audio.speech.create(model="tts-9", voice="alloy", input="Hello.")
    assert caught.value.code == "model_not_found"


def test_voices_are_listed_as_text_to_speech_models(openai_client: openai.OpenAI, server_url: str) -> None:
    models = {m.id: m for m in openai_client.models.list()}
    assert models["en_US-joe-medium"].model_extra["kind"] == "text-to-speech"
    assert models["tts-1"].model_extra["kind"] == "text-to-speech"
    assert models["whisper-1"].model_extra["kind"] == "speech-to-text"
    voices = requests.get(server_url + "/v1/audio/voices", timeout=10).json()["data"]
    assert voices[0]["id"] == "en_US-joe-medium" and voices[0]["language"] == "en_US"
    assert "alloy" in voices[0]["openai_voices"] and voices[0]["licence"].startswith("CC0")


def test_metrics_count_characters_audio_seconds_and_realtime_factor(
    openai_client: openai.OpenAI, server_url: str
) -> None:
    before = _speech_characters(server_url)
    openai_client.audio.speech.create(model="tts-1", voice="alloy", input=SENTENCE, response_format="flac")
    text = requests.get(server_url + "/metrics", timeout=10).text
    assert _speech_characters(server_url) - before == len(SENTENCE)
    assert re.search(r'^whisper_api_speech_audio_seconds_total\{voice="en_US-joe-medium"\} [1-9]', text, re.M)
    assert "whisper_api_speech_realtime_factor_bucket" in text
