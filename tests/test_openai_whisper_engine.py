"""The openai-whisper engine in-process, on real weights: the features the API suite cannot see cheaply."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import numpy as np
import pytest

from whisper_api.engine.audio import decode_audio
from whisper_api.engine.checkpoints import locate_checkpoint
from whisper_api.engine.openai_whisper import OpenAIWhisperTranscriber, choose_torch_device
from whisper_api.engine.types import SAMPLE_RATE, Audio, ModelSearch, TranscriptionOptions, collect


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny(cache_dir: Path) -> OpenAIWhisperTranscriber:
    return OpenAIWhisperTranscriber(
        locate_checkpoint("tiny.en", ModelSearch(cache_dir=cache_dir, offline=True)),
        choose_torch_device("cpu", 2),
    )


@pytest.fixture(scope="module")
def jfk(audio_dir: Path) -> Audio:
    return decode_audio((audio_dir / "jfk.flac").read_bytes())


@pytest.fixture(scope="module")
def german(audio_dir: Path) -> Audio:
    """Ten seconds of the German half of the multilingual clip."""
    samples = decode_audio((audio_dir / "multilingual.mp3").read_bytes()).samples
    return Audio(samples[32 * SAMPLE_RATE : 42 * SAMPLE_RATE])


def test_cpu_runs_float32_with_the_configured_threads(tiny: OpenAIWhisperTranscriber) -> None:
    import torch

    assert tiny.device.fp16 is False
    assert next(tiny._model.parameters()).dtype == torch.float32
    assert torch.get_num_threads() == 2


def test_a_fixed_temperature_is_used_alone(tiny: OpenAIWhisperTranscriber, jfk: Audio) -> None:
    transcript = collect(*tiny.transcribe(jfk, TranscriptionOptions(temperature=0.3)))
    assert {s.temperature for s in transcript.segments} == {0.3}


def test_vad_skips_silence_entirely(tiny: OpenAIWhisperTranscriber) -> None:
    silence = Audio(np.zeros(5 * SAMPLE_RATE, dtype=np.float32))
    info, segments = tiny.transcribe(silence, TranscriptionOptions(vad_filter=True))
    assert list(segments) == [] and info.duration == 5.0


def test_concurrent_calls_into_one_model_are_serialised(tiny: OpenAIWhisperTranscriber, jfk: Audio) -> None:
    def run(_: int) -> str:
        return collect(*tiny.transcribe(jfk, TranscriptionOptions(beam_size=1))).text

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        texts = list(pool.map(run, range(3)))
    assert len(set(texts)) == 1 and "ask not what your country" in texts[0].lower()


@pytest.mark.multilingual
def test_base_detects_german_translates_and_transcribes_it(cache_dir: Path, german: Audio) -> None:
    base = OpenAIWhisperTranscriber(
        locate_checkpoint("base", ModelSearch(cache_dir=cache_dir, offline=True)),
        choose_torch_device("cpu", 2),
    )
    info, segments = base.transcribe(german, TranscriptionOptions(task="translate", beam_size=1))
    english = collect(info, segments).text.lower().split()
    assert info.language == "de" and info.language_probability > 0.5
    assert "the" in english and "der" not in english
    german_words = (
        collect(*base.transcribe(german, TranscriptionOptions(language="de", beam_size=1)))
        .text.lower()
        .split()
    )
    assert "der" in german_words or "die" in german_words
