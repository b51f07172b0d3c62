"""Diarization on the real server (tiny.en) through the official Python SDK, on real voices.

Stereo: `stereo_diarization.wav` (one speaker per channel). Mono: a conversation of two espeak-ng
voices built here, which needs the optional speaker model (`scripts/setup diarization`, part of
`scripts/setup dev`) and Debian's espeak-ng (scripts/system-packages).
"""

from __future__ import annotations

import base64
from pathlib import Path

import openai
import pytest

from tests.support.conversation import (
    Turn,
    best_names,
    conversation,
    espeak_available,
    reference_clip,
    words_attributed,
)
from tests.text import word_errors

LEFT = "He began a confused complaint against the wizard, who had vanished behind the curtain on the left."
RIGHT = "The horizon seems extremely distant."


@pytest.fixture(scope="module")
def talk() -> tuple[bytes, list[Turn]]:
    if not espeak_available():
        pytest.skip("espeak-ng is not installed")
    return conversation()


def data_url(wav: bytes) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav).decode()


def as_dicts(segments) -> list[dict]:  # noqa: ANN001
    return [{"start": s.start, "end": s.end, "text": s.text, "speaker": s.speaker} for s in segments]


def test_each_channel_is_its_own_speaker(openai_client: openai.OpenAI, audio_dir: Path) -> None:
    with (audio_dir / "stereo_diarization.wav").open("rb") as fh:
        result = openai_client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize", file=fh, response_format="diarized_json"
        )
    assert result.task == "transcribe" and result.duration == pytest.approx(5.0, abs=0.1)
    speakers = {s.speaker for s in result.segments}
    assert speakers == {"A", "B"}
    said = {who: " ".join(s.text for s in result.segments if s.speaker == who) for who in speakers}
    assert word_errors(LEFT, said["A"]) <= 3, said
    assert word_errors(RIGHT, said["B"]) <= 1, said
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)
    assert all(s.type == "transcript.text.segment" and isinstance(s.id, str) for s in result.segments)
    assert result.usage.seconds == 5


def test_mono_conversation_has_two_speakers_with_the_right_words(
    openai_client: openai.OpenAI, talk: tuple[bytes, list[Turn]]
) -> None:
    wav, turns = talk
    result = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize", file=("talk.wav", wav), response_format="diarized_json"
    )
    segments = as_dicts(result.segments)
    assert {s["speaker"] for s in segments} == {"A", "B"}
    names = best_names(segments, turns)
    assert sorted(names.values()) == ["high", "low"]
    assert words_attributed(segments, turns, names) >= 0.85


def test_known_speaker_references_name_the_voices(
    openai_client: openai.OpenAI, talk: tuple[bytes, list[Turn]]
) -> None:
    wav, turns = talk
    result = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("talk.wav", wav),
        response_format="diarized_json",
        known_speaker_names=["agent", "customer"],
        known_speaker_references=[data_url(reference_clip("low")), data_url(reference_clip("high"))],
    )
    segments = as_dicts(result.segments)
    assert {s["speaker"] for s in segments} == {"agent", "customer"}
    assert words_attributed(segments, turns, {"agent": "low", "customer": "high"}) >= 0.85


def test_diarized_stream_sends_segment_events(openai_client: openai.OpenAI, audio_dir: Path) -> None:
    stream = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=("stereo.wav", (audio_dir / "stereo_diarization.wav").read_bytes()),
        response_format="diarized_json",
        stream=True,
    )
    events = list(stream)
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert {e.speaker for e in segments} == {"A", "B"}
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    assert [d.segment_id for d in deltas] == [s.id for s in segments]
    assert events[-1].type == "transcript.text.done"


def test_bad_speaker_reference_is_a_clear_400(openai_client: openai.OpenAI, audio_dir: Path) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=("stereo.wav", (audio_dir / "stereo_diarization.wav").read_bytes()),
            response_format="diarized_json",
            known_speaker_names=["agent"],
            known_speaker_references=["data:audio/wav;base64,bm90IGF1ZGlv"],
        )
    assert caught.value.body["param"] == "known_speaker_references[0]"
