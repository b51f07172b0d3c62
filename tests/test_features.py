"""Features computed 30 s at a time are faster-whisper's, on real speech of every length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from faster_whisper.feature_extractor import FeatureExtractor

from bench.clips import ref71_samples
from whisper_api.engine.features import PIECE_FRAMES, PiecewiseFeatures
from whisper_api.engine.types import SAMPLE_RATE


@pytest.fixture(scope="module")
def speech(audio_dir: Path) -> np.ndarray:
    """ref71 four times: 284 s of English and German."""
    return np.tile(ref71_samples(audio_dir)[0], 4)


@pytest.mark.parametrize("seconds", [0.01, 1.0, 29.99, 30.0, 30.01, 70.9, 240.0, 284.0])
def test_the_same_features_as_faster_whisper(speech: np.ndarray, seconds: float) -> None:
    samples = speech[: int(seconds * SAMPLE_RATE)]
    expected = FeatureExtractor()(samples)
    got = PiecewiseFeatures(FeatureExtractor())(samples)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    # equal up to the last bit of the mel filter's matrix product, which BLAS blocks by width
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    if seconds >= 60:
        assert got.shape[1] > 2 * PIECE_FRAMES  # several pieces, and their joins, were compared


def test_the_chunk_computed_ahead_is_handed_over_once(speech: np.ndarray) -> None:
    features = PiecewiseFeatures(FeatureExtractor())
    ahead = features(speech[: 60 * SAMPLE_RATE])
    assert features(speech[: 60 * SAMPLE_RATE].copy()) is ahead  # equal samples: kept
    again = features(speech[: 60 * SAMPLE_RATE])
    assert again is not ahead and np.array_equal(again, ahead)  # kept for one use only
    other = features(speech[SAMPLE_RATE : 61 * SAMPLE_RATE])
    assert not np.array_equal(other, ahead)


def test_reads_the_extractors_settings_through(speech: np.ndarray) -> None:
    extractor = FeatureExtractor()
    features = PiecewiseFeatures(extractor)
    assert (features.nb_max_frames, features.time_per_frame) == (
        extractor.nb_max_frames,
        extractor.time_per_frame,
    )
