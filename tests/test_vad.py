"""Silero VAD read 33 s at a time gives faster-whisper's probabilities and spans, to the bit."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from faster_whisper.utils import get_assets_path
from faster_whisper.vad import SileroVADModel, VadOptions, get_speech_timestamps, get_vad_model

from bench.clips import ref71_samples
from whisper_api.engine.vad import BATCH_WINDOWS, WINDOW_SAMPLES, bound_vad_batches
from whisper_api.engine.windows import pauses


@pytest.fixture(scope="module")
def speech(audio_dir: Path) -> np.ndarray:
    """ref71 three times (213 s, English and German), cut to whole 32 ms windows."""
    samples = np.tile(ref71_samples(audio_dir)[0], 3)
    return samples[: len(samples) // WINDOW_SAMPLES * WINDOW_SAMPLES]


def test_probabilities_are_faster_whispers_whole_run(speech: np.ndarray) -> None:
    unbounded = SileroVADModel(os.path.join(get_assets_path(), "silero_vad_v6.onnx"))
    expected = unbounded(speech)  # one run of up to 10,000 windows, as faster-whisper does
    bound_vad_batches()
    got = get_vad_model()(speech)
    assert len(speech) // WINDOW_SAMPLES > 5 * BATCH_WINDOWS  # several runs and their joins
    assert np.array_equal(got, expected)


def test_speech_spans_and_pauses_are_unchanged(speech: np.ndarray) -> None:
    options = VadOptions(min_silence_duration_ms=300, speech_pad_ms=100)
    bound_vad_batches()
    model = get_vad_model()
    bounded_spans = get_speech_timestamps(speech, options)
    bounded_class = model.__class__
    model.__class__ = SileroVADModel  # faster-whisper's own, for one call
    try:
        whole_spans = get_speech_timestamps(speech, options)
    finally:
        model.__class__ = bounded_class
    assert bounded_spans == whole_spans
    assert len(pauses(speech)) >= 10  # the clip's pauses are found through the bounded model
