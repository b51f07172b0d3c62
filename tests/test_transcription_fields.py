"""Fast web-layer tests (fake transcriber) of OpenAI's newer transcription fields."""

from __future__ import annotations

import io
import json

import pytest
from flask.testing import FlaskClient

from tests.support.fakes import FakeTranscriber
from tests.test_web_api import URL, error_of, post
from whisper_api.engine.types import VadSettings
from whisper_api.web.schemas import form_to_payload

DATA_URL = "data:audio/wav;base64,UklGRiQAAABXQVZFZm10IBAAAAABAAEAgD4AAAB9AAACABAAZGF0YQAAAAA="


def test_bracketed_list_values_keep_their_commas() -> None:
    from werkzeug.datastructures import MultiDict

    form = MultiDict([("keywords[]", "New York, NY"), ("known_speaker_references[]", DATA_URL)])
    payload = form_to_payload(form)
    assert payload["keywords"] == ["New York, NY"]
    assert payload["known_speaker_references"] == [DATA_URL]


def test_bare_list_values_are_split_on_commas() -> None:
    from werkzeug.datastructures import MultiDict

    assert form_to_payload(MultiDict([("include", "logprobs, x")]))["include"] == ["logprobs", "x"]


def test_keywords_reach_the_engine_whole(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    response = client.post(
        URL,
        data={
            "model": "gpt-transcribe",
            "keywords[]": ["New York, NY", "ComfyUI"],
            "file": (io.BytesIO(jfk_wav), "a"),
        },
    )
    assert response.status_code == 200
    assert fakes["base"].calls[-1].keywords == ("New York, NY", "ComfyUI")


def test_languages_restrict_detection_and_come_back(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    response = client.post(
        URL,
        data={"model": "gpt-transcribe", "languages[]": ["German", "fr"], "file": (io.BytesIO(jfk_wav), "a")},
    )
    assert fakes["base"].calls[-1].languages == ("de", "fr")
    assert response.get_json()["languages"] == [{"code": "de"}]


def test_unknown_language_in_languages_is_400(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, **{"languages[]": "klingon"})
    assert response.status_code == 400
    assert error_of(response)["param"] == "languages"


def test_english_only_model_refuses_languages_without_english(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, model="tiny.en", **{"languages[]": "de"})
    assert response.status_code == 400
    assert error_of(response)["param"] == "languages"


def test_logprobs_in_json_concatenate_to_the_text(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    body = post(client, jfk_wav, **{"include[]": "logprobs"}).get_json()
    assert fakes["base"].calls[-1].logprobs is True
    assert "".join(t["token"] for t in body["logprobs"]).strip() == body["text"]
    assert all(t["bytes"] == list(t["token"].encode()) for t in body["logprobs"])


def test_logprobs_are_not_scored_for_formats_without_them(
    client: FlaskClient, jfk_wav: bytes, fakes: dict[str, FakeTranscriber]
) -> None:
    body = post(client, jfk_wav, response_format="verbose_json", **{"include[]": "logprobs"}).get_json()
    assert fakes["base"].calls[-1].logprobs is False
    assert "logprobs" not in body


def test_unknown_include_is_400(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, **{"include[]": "everything"})
    assert response.status_code == 400
    assert error_of(response)["param"].startswith("include")


def test_stream_deltas_and_done_carry_logprobs(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, stream="true", **{"include[]": "logprobs"})
    frames = [f.removeprefix("data: ") for f in response.data.decode().split("\n\n") if f]
    events = [json.loads(f) for f in frames[:-1]]
    deltas = [e for e in events if e["type"] == "transcript.text.delta"]
    assert all(e["logprobs"] for e in deltas)
    done = events[-1]
    assert done["logprobs"] == [lp for e in deltas for lp in e["logprobs"]]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"chunking_strategy": "auto"}, None),
        (
            {
                "chunking_strategy[type]": "server_vad",
                "chunking_strategy[threshold]": "0.7",
                "chunking_strategy[prefix_padding_ms]": "100",
                "chunking_strategy[silence_duration_ms]": "900",
            },
            VadSettings(threshold=0.7, speech_pad_ms=100, min_silence_ms=900),
        ),
        ({"chunking_strategy": '{"type": "server_vad"}'}, VadSettings(0.5, 300, 200)),
    ],
)
def test_chunking_strategy_drives_the_vad(
    client: FlaskClient,
    jfk_wav: bytes,
    fakes: dict[str, FakeTranscriber],
    fields: dict[str, str],
    expected: VadSettings | None,
) -> None:
    assert post(client, jfk_wav, **fields).status_code == 200
    options = fakes["base"].calls[-1]
    assert options.vad_filter is True
    assert options.vad == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"chunking_strategy": "manual"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[threshold]": "2"},
        {"chunking_strategy[type]": "server_vad", "chunking_strategy[silence_duration_ms]": "soon"},
    ],
)
def test_bad_chunking_strategy_is_400(client: FlaskClient, jfk_wav: bytes, fields: dict[str, str]) -> None:
    response = post(client, jfk_wav, **fields)
    assert response.status_code == 400
    assert error_of(response)["param"].startswith("chunking_strategy")


@pytest.mark.parametrize("fmt", ["srt", "vtt", "verbose_json"])
def test_stream_of_a_format_without_a_streamed_shape_is_400(
    client: FlaskClient, jfk_wav: bytes, fmt: str
) -> None:
    response = post(client, jfk_wav, stream="true", response_format=fmt)
    assert response.status_code == 400
    assert error_of(response)["param"] == "response_format"


def test_speaker_names_without_references_is_400(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, **{"known_speaker_names[]": "agent"})
    assert response.status_code == 400
    assert error_of(response)["param"] == "known_speaker_names"


def test_more_than_four_known_speakers_is_400(client: FlaskClient, jfk_wav: bytes) -> None:
    response = client.post(
        URL,
        data={
            "model": "gpt-4o-transcribe-diarize",
            "response_format": "diarized_json",
            "known_speaker_names[]": [f"s{i}" for i in range(5)],
            "known_speaker_references[]": [DATA_URL] * 5,
            "file": (io.BytesIO(jfk_wav), "a"),
        },
    )
    assert response.status_code == 400


def test_mono_diarization_without_the_speaker_model_is_a_400_saying_how_to_install(
    client: FlaskClient, jfk_wav: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from whisper_api.engine import speaker_encoder

    monkeypatch.setattr(speaker_encoder, "weights_path", lambda: None)
    response = post(client, jfk_wav, model="gpt-4o-transcribe-diarize", response_format="diarized_json")
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "diarization_unavailable"
    assert "scripts/setup diarization" in error["message"]


def test_translation_has_no_diarized_json(client: FlaskClient, jfk_wav: bytes) -> None:
    response = post(client, jfk_wav, url="/v1/audio/translations", response_format="diarized_json")
    assert response.status_code == 400
    assert error_of(response)["param"] == "response_format"
