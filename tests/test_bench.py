"""The benchmark: its helpers, and the quick mode's code path end to end on a tiny input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.client import percentile, scored_text
from bench.clips import HELD_OUT_GAP_SECONDS, HELD_OUT_SENTENCES, JFK_TEXT, Clip, build_clips, held_out_clip
from bench.configs import SMOKE
from bench.report import render, write
from bench.run import run_plan
from bench.wer import normalise, word_error_rate
from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.types import SAMPLE_RATE


def test_wer_ignores_case_punctuation_and_hyphens() -> None:
    assert word_error_rate("And so, my fellow-Americans!", "and so my fellow americans") == 0.0


def test_wer_counts_each_dropped_word() -> None:
    assert word_error_rate("ask not what your country", "ask what your country") == pytest.approx(0.2)


def test_wer_of_an_empty_transcript_is_one() -> None:
    assert word_error_rate(JFK_TEXT, "") == 1.0


def test_normalise_keeps_apostrophes_inside_words() -> None:
    assert normalise("Don't 'quote' me") == "don't quote me"


def test_percentile_is_nearest_rank() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.0
    assert percentile([float(v) for v in range(1, 21)], 95) == 19.0


def test_scored_text_keeps_only_segments_before_the_unscored_tail() -> None:
    clip = Clip("c", Path("c.wav"), 70.0, "a b", scored_until=41.0)
    assert scored_text(clip, [(0.0, " a"), (40.5, " b"), (41.0, " c")]) == " a b"


def test_long_clips_have_the_exact_length_and_a_reference_for_every_piece(
    audio_dir: Path, tmp_path: Path
) -> None:
    clips = build_clips(audio_dir, tmp_path, (60.0,))
    long60 = clips["long60"]
    assert long60.duration == 60.0
    assert long60.reference.startswith(JFK_TEXT + " Permission is hereby granted")
    assert clips["ref71"].duration == pytest.approx(70.9, abs=0.05)


def test_held_out_speech_is_each_sentence_spoken_in_turn(tmp_path: Path) -> None:
    pytest.importorskip("piper", reason="the held-out clip needs a voice (requirements-speech.txt)")
    clip = held_out_clip(tmp_path, Settings.from_env().voices_dir)
    assert clip is not None
    assert [p.text for p in clip.passages] == list(HELD_OUT_SENTENCES)
    assert clip.reference == " ".join(HELD_OUT_SENTENCES)
    for before, after in zip(clip.passages[:-1], clip.passages[1:], strict=True):
        assert after.start - before.end == pytest.approx(HELD_OUT_GAP_SECONDS, abs=0.01)
    assert all(1.5 < p.end - p.start < 8.0 for p in clip.passages)  # a 10-14 word sentence
    samples = decode_audio(clip.path.read_bytes()).samples
    assert len(samples) / SAMPLE_RATE == pytest.approx(clip.duration, abs=0.01)
    first = clip.passages[0]
    assert np.abs(samples[int(first.start * SAMPLE_RATE) : int(first.end * SAMPLE_RATE)]).max() > 0.1
    # Every run hears the same audio (the voice's random generator is seeded).
    (tmp_path / "again").mkdir()
    again = held_out_clip(tmp_path / "again", Settings.from_env().voices_dir)
    assert again is not None and again.path.read_bytes() == clip.path.read_bytes()


def test_quick_mode_code_path_measures_a_tiny_input_end_to_end(audio_dir: Path, tmp_path: Path) -> None:
    results = run_plan(SMOKE, audio_dir, tmp_path)
    paths = write(results, tmp_path)

    saved = json.loads(paths["json"].read_text())
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Concurrent clients" in render(saved)
    assert "americans" in normalise(saved["baseline"]["files"]["short"]["text"])
    (config,) = saved["configs"]
    http = config["http"]
    assert "americans" in normalise(http["single"]["short"]["text"])
    assert "americans" in normalise(config["direct"]["files"]["short"]["text"])
    assert [level["clients"] for level in http["load"]] == [1, 2]
    assert all(0.0 <= level["wer"] <= 1.0 for level in http["load"])
    assert http["stream"]["deltas"] >= 1
    assert len(http["peak_rss_mib_per_worker"]) == 1 and http["peak_rss_mib_per_worker"][0] > 0
    assert len(http["load_seconds"]) == 1


def test_full_and_quick_plans_measure_batched_beside_sequential_decoding() -> None:
    """Both plans run a batched configuration next to the sequential one, on the same clips."""
    from bench.configs import FULL, QUICK

    for plan in (FULL, QUICK):
        batched = [c for c in plan.configs if c.effective().batch_windows > 1]
        sequential = [c for c in plan.configs if c.effective().batch_windows <= 1]
        assert batched and sequential, plan.name
        assert batched[0].environment()["WHISPER_API_BATCH_WINDOWS"] == str(batched[0].batch_windows)
        assert set(batched[0].clips) <= {n for c in sequential for n in c.clips}
