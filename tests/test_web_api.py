"""Fast tests of the HTTP layer with a fake transcriber: fields, shapes, headers, errors."""

from __future__ import annotations

import io
import json

import pytest
import srt
import webvtt
from flask.testing import FlaskClient

from tests.support.fakes import FakeTranscriber

URL = "/v1/audio/transcriptions"


def post(client: FlaskClient, audio: bytes, url: str = URL, **fields: object):
    data: dict[str, object] = {"model": "whisper-1", **fields}
    data["file"] = (io.BytesIO(audio), "speech.bin")
    return client.post(url, data=data, content_type="multipart/form-data")


def error_of(response) -> dict:
    assert response.content_type == "application/json; charset=utf-8"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_json_is_utf8_unescaped_with_charset(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav)
    assert response.status_code == 200
    assert response.content_type == "application/json; charset=utf-8"
    assert "Grüße" in response.data.decode("utf-8")  # not \u00fc escapes
    assert response.get_json() == {
        "text": "Grüße, erste Hälfte. 日本語の後半。",
        "usage": {"type": "duration", "seconds": 11},
    }


@pytest.mark.parametrize("fmt", ["text", "srt", "vtt"])
def test_plain_formats_are_raw_text(client: FlaskClient, jfk_wav: bytes, fmt: str) -> None:
    response = post(client, jfk_wav, response_format=fmt)
    assert response.status_code == 200
    assert response.content_type == "text/plain; charset=utf-8"
    assert not response.data.startswith(b'"')


def test_srt_parses_with_comma_millis(client: FlaskClient, jfk_wav: bytes) -> None:
    body = post(client, jfk_wav, response_format="srt").data.decode()
    subtitles = list(srt.parse(body))
    assert [s.content for s in subtitles] == ["Grüße, erste Hälfte.", "日本語の後半。"]
    assert "00:00:05,500" in body
    assert subtitles[1].end.total_seconds() == pytest.approx(11.0)


def test_vtt_parses_with_header_and_dot_millis(client: FlaskClient, jfk_wav: bytes) -> None:
    body = post(client, jfk_wav, response_format="vtt").data.decode()
    assert body.startswith("WEBVTT\n\n")
    captions = webvtt.from_buffer(io.StringIO(body)).captions
    assert [c.text for c in captions] == ["Grüße, erste Hälfte.", "日本語の後半。"]
    assert captions[0].end == "00:00:05.500"


def test_verbose_json_has_every_segment_field(client: FlaskClient, jfk_wav: bytes) -> None:
    body = post(client, jfk_wav, response_format="verbose_json").get_json()
    assert body["task"] == "transcribe"
    assert body["language"] == "german"
    assert body["duration"] == pytest.approx(11.0)
    assert body["usage"] == {"type": "duration", "seconds": 11}
    assert "words" not in body
    segment = body["segments"][0]
    assert set(segment) == {
        "id", "seek", "start", "end", "text", "tokens", "temperature",
        "avg_logprob", "compression_ratio", "no_speech_prob",
    }  # fmt: skip
    assert segment["id"] == 0 and isinstance(segment["tokens"][0], int)


@pytest.mark.parametrize("key", ["timestamp_granularities[]", "timestamp_granularities"])
def test_word_granularity_accepts_bracket_and_bare_names(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber], key: str
) -> None:
    body = post(client, jfk_wav, response_format="verbose_json", **{key: "word"}).get_json()
    assert fakes["base"].calls[-1].word_timestamps is True
    assert body["words"][0] == {"word": "Grüße", "start": 0.0, "end": 0.1}
    assert "segments" not in body  # only the granularities asked for


def test_both_granularities_give_words_and_segments(client: FlaskClient, jfk_wav: bytes) -> None:
    response = client.post(
        URL,
        data={
            "model": "whisper-1",
            "response_format": "verbose_json",
            "timestamp_granularities[]": ["word", "segment"],
            "file": (io.BytesIO(jfk_wav), "a.flac"),
        },
    )
    body = response.get_json()
    assert [w["word"] for w in body["words"]] == ["Grüße", "erste", "Hälfte", "日本語の後半"]
    assert len(body["segments"]) == 2


def test_words_are_not_aligned_unless_verbose_json(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    post(client, jfk_wav, response_format="json", timestamp_granularities="word")
    assert fakes["base"].calls[-1].word_timestamps is False


def test_fields_reach_the_engine(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    post(client, jfk_wav, language="de-AT", prompt="ComfyUI", temperature="0.4", vad_filter="true")
    options = fakes["base"].calls[-1]
    assert options.language == "de"
    assert options.prompt == "ComfyUI"
    assert options.temperatures == (0.4,)
    assert options.vad_filter is True
    assert options.task == "transcribe"


def test_temperature_zero_means_fallback_schedule(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    post(client, jfk_wav, temperature="0")
    assert fakes["base"].calls[-1].temperatures == (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def test_empty_strings_mean_not_set(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    response = post(client, jfk_wav, language="", prompt="", temperature="", response_format="")
    assert response.status_code == 200
    assert fakes["base"].calls[-1].language is None


def test_newer_openai_fields_do_not_break_a_request(client: FlaskClient, jfk_wav: bytes) -> None:
    response = client.post(
        URL,
        data={
            "model": "gpt-4o-transcribe",
            "include[]": "logprobs",
            "chunking_strategy[type]": "server_vad",
            "chunking_strategy[threshold]": "0.5",
            "keywords[]": "New York, NY",
            "stream": "false",
            "something_new": "x",
            "file": (io.BytesIO(jfk_wav), "a.flac"),
        },
    )
    assert response.status_code == 200


def test_translation_reports_english_and_translate_task(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    body = post(client, jfk_wav, url="/v1/audio/translations", response_format="verbose_json").get_json()
    assert body["task"] == "translate"
    assert body["language"] == "english"
    assert fakes["base"].calls[-1].task == "translate"


def test_trailing_slash_is_served_without_redirect(client: FlaskClient, jfk_wav: bytes) -> None:
    assert post(client, jfk_wav, url=URL + "/").status_code == 200


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"response_format": "docx"}, "response_format"),
        ({"temperature": "7"}, "temperature"),
        ({"temperature": "warm"}, "temperature"),
        ({"temperature": "nan"}, "temperature"),
        ({"language": "klingon"}, "language"),
        ({"timestamp_granularities[]": "paragraph"}, "timestamp_granularities"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_field_is_400_naming_the_param(
    client: FlaskClient, jfk_wav: bytes, fields: dict[str, str], param: str
) -> None:
    response = post(client, jfk_wav, **fields)
    assert response.status_code == 400
    error = error_of(response)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_missing_file_is_400(client: FlaskClient) -> None:
    response = client.post(URL, data={"model": "whisper-1"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert error_of(response)["param"] == "file"


def test_json_body_instead_of_multipart_is_400(client: FlaskClient) -> None:
    response = client.post(URL, json={"model": "whisper-1"})
    assert response.status_code == 400
    assert error_of(response)["param"] in {"file", "model"}


@pytest.mark.parametrize(
    "payload", [b"", b"this is a text file, not audio", b"RIFF\x00\x00\x00\x00WAVEjunk" * 10]
)
def test_undecodable_audio_is_400(client: FlaskClient, payload: bytes) -> None:
    response = post(client, payload)
    assert response.status_code == 400
    assert error_of(response)["param"] == "file"


def test_unknown_model_is_404_model_not_found(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, model="no-such-model")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "model_not_found"
    assert "no-such-model" in error["message"]


def test_oversize_body_is_413_in_openai_shape(client: FlaskClient) -> None:
    response = post(client, b"\0" * 420_000)
    assert response.status_code == 413
    assert error_of(response)["message"].startswith("Maximum content size limit")


def test_unknown_route_and_wrong_method_are_openai_errors(client: FlaskClient) -> None:
    assert client.get("/v1/nothing").status_code == 404
    error_of(client.get("/v1/nothing"))
    response = client.get(URL)
    assert response.status_code == 405
    assert error_of(response)["type"] == "invalid_request_error"


def test_every_response_has_a_request_id(client: FlaskClient) -> None:
    ids = {client.get("/health").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


def test_models_list_has_served_models_and_aliases(client: FlaskClient) -> None:
    body = client.get("/v1/models").get_json()
    assert body["object"] == "list"
    ids = {m["id"]: m for m in body["data"]}
    assert {"base", "tiny.en", "whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe"} <= set(ids)
    assert ids["whisper-1"]["root"] == "base"
    for model in body["data"]:
        assert model["object"] == "model"
        assert isinstance(model["created"], int) and model["created"] > 1_600_000_000


def test_model_retrieve_and_404(client: FlaskClient) -> None:
    assert client.get("/v1/models/whisper-1").get_json()["id"] == "whisper-1"
    response = client.get("/v1/models/nope")
    assert response.status_code == 404
    assert error_of(response)["code"] == "model_not_found"


def test_ready_turns_200_once_the_default_model_loaded(client: FlaskClient, jfk_wav: bytes) -> None:
    not_ready = client.get("/ready")
    assert not_ready.status_code == 503
    assert not_ready.headers["Retry-After"]
    post(client, jfk_wav)
    body = client.get("/ready").get_json()
    assert body["status"] == "ready" and body["loaded"] == ["base"]


def test_english_only_model_refuses_other_languages(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, model="tiny.en", language="de")
    assert response.status_code == 400
    assert error_of(response)["param"] == "language"
    response = post(client, jfk_wav, model="tiny.en", url="/v1/audio/translations")
    assert response.status_code == 400


def test_stream_true_sends_deltas_done_and_sentinel(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, stream="true")
    assert response.content_type.startswith("text/event-stream")
    assert response.headers["X-Accel-Buffering"] == "no"
    frames = [f for f in response.data.decode().split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    events = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    assert [e["type"] for e in events] == [
        "transcript.text.delta",
        "transcript.text.delta",
        "transcript.text.done",
    ]
    assert events[-1]["text"] == "".join(e["delta"] for e in events[:-1])


def test_engine_failure_is_500_in_openai_shape_and_not_retried(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber], monkeypatch
) -> None:
    post(client, jfk_wav)  # loads the fake model

    def explode(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(fakes["base"], "transcribe", explode)
    response = post(client, jfk_wav)
    assert response.status_code == 500
    assert response.headers["x-should-retry"] == "false"
    error = error_of(response)
    assert error["type"] == "server_error" and "secret" not in error["message"]


def test_uploads_stay_in_memory_whatever_their_name(app, jfk_wav: bytes) -> None:
    seen = {}

    @app.post("/echo-stream")
    def echo_stream():
        from flask import request

        upload = request.files["file"]
        seen["stream"] = type(upload.stream).__name__
        return "ok"

    app.test_client().post("/echo-stream", data={"file": (io.BytesIO(jfk_wav), "../../etc/passwd")})
    assert seen["stream"] == "BytesIO"
