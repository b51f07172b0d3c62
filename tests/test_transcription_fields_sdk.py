"""OpenAI's newer transcription fields on the real server (tiny.en), through the official Python SDK."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openai
import pytest

from tests.support.media import speech_samples, wav_bytes
from tests.text import JFK_REFERENCE, word_errors


def test_logprobs_are_negative_and_concatenate_to_the_text(
    openai_client: openai.OpenAI, jfk_bytes: bytes
) -> None:
    result = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("jfk.flac", jfk_bytes), include=["logprobs"]
    )
    assert word_errors(JFK_REFERENCE, result.text) <= 2
    assert result.logprobs and all(lp.logprob < 0 for lp in result.logprobs)
    assert "".join(lp.token for lp in result.logprobs).strip() == result.text
    # The SDK types `bytes` as floats here; we send the UTF-8 bytes as integers.
    assert all(bytes(int(b) for b in lp.bytes).decode() == lp.token for lp in result.logprobs)
    assert sum(lp.logprob for lp in result.logprobs) / len(result.logprobs) > -1  # a clear recording


def test_openai_whisper_engine_scores_logprobs_too(ow_openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = ow_openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("jfk.flac", jfk_bytes), include=["logprobs"]
    )
    assert result.logprobs and all(lp.logprob < 0 for lp in result.logprobs)
    assert "".join(lp.token for lp in result.logprobs).strip() == result.text


def test_streamed_logprobs_in_every_delta_and_the_done_event(
    openai_client: openai.OpenAI, jfk_bytes: bytes
) -> None:
    stream = openai_client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("jfk.flac", jfk_bytes), include=["logprobs"], stream=True
    )
    events = list(stream)
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert all(e.logprobs for e in deltas)
    assert [lp.token for lp in done.logprobs] == [lp.token for e in deltas for lp in e.logprobs]
    assert "".join(lp.token for lp in done.logprobs).strip() == done.text


def test_keywords_make_the_product_name_appear(openai_client: openai.OpenAI, audio_dir: Path) -> None:
    clip = (audio_dir / "hotwords.mp3").read_bytes()
    plain = openai_client.audio.transcriptions.create(model="gpt-transcribe", file=("hotwords.mp3", clip))
    assert "ComfyUI" not in plain.text  # the model alone hears "comfy eye"
    biased = openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("hotwords.mp3", clip), keywords=["ComfyUI"]
    )
    assert "ComfyUI" in biased.text


def test_keywords_past_the_context_are_cut_not_an_error(
    openai_client: openai.OpenAI, jfk_bytes: bytes
) -> None:
    """90 keywords of 150 characters are thousands of tokens: the first ones are used, no 500."""
    keywords = [f"Keyword{i} " + "supercalifragilistic " * 7 for i in range(90)]
    text = openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("jfk.flac", jfk_bytes), keywords=keywords
    ).text
    assert "country" in text.lower()


def test_openai_whisper_engine_takes_keywords_in_its_prompt(
    ow_openai_client: openai.OpenAI, audio_dir: Path
) -> None:
    clip = (audio_dir / "hotwords.mp3").read_bytes()
    biased = ow_openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("hotwords.mp3", clip), keywords=["ComfyUI"]
    )
    assert "ComfyUI" in biased.text


def test_gpt_transcribe_reports_the_language(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("jfk.flac", jfk_bytes), languages=["en"]
    )
    assert [language.code for language in result.languages] == ["en"]


@pytest.mark.multilingual
def test_languages_restrict_detection(base_openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = base_openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("jfk.flac", jfk_bytes), languages=["de", "fr"]
    )
    assert [language.code for language in result.languages] in (["de"], ["fr"])


def test_server_vad_threshold_drives_the_vad(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    samples = np.concatenate([np.zeros(3 * 16_000, dtype=np.float32), speech_samples(jfk_bytes)])
    clip = wav_bytes(samples)
    heard = openai_client.audio.transcriptions.create(
        model="gpt-transcribe",
        file=("a.wav", clip),
        chunking_strategy={"type": "server_vad", "threshold": 0.5, "silence_duration_ms": 500},
    )
    assert word_errors(JFK_REFERENCE, heard.text) <= 2
    deaf = openai_client.audio.transcriptions.create(
        model="gpt-transcribe",
        file=("a.wav", clip),
        chunking_strategy={"type": "server_vad", "threshold": 1.0},
    )
    assert deaf.text == ""  # no frame is speech with certainty 1: nothing reaches the decoder
    auto = openai_client.audio.transcriptions.create(
        model="gpt-transcribe", file=("a.wav", clip), chunking_strategy="auto"
    )
    assert word_errors(JFK_REFERENCE, auto.text) <= 2


def test_stream_of_srt_is_a_clear_400(openai_client: openai.OpenAI, jfk_bytes: bytes) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.audio.transcriptions.create(
            model="whisper-1", file=("jfk.flac", jfk_bytes), response_format="srt", stream=True
        )
    assert caught.value.body["param"] == "response_format"
