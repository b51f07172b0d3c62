"""Per-window languages, chunks and turns cut at pauses: the rules on real audio and Silero VAD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from whisper_api.engine.audio import decode_audio
from whisper_api.engine.languages import LanguageSwitch
from whisper_api.engine.types import SAMPLE_RATE, Audio, Segment
from whisper_api.engine.windows import WindowPolicy, pauses, transcribe_windowed


def test_a_sure_window_switches_and_an_unsure_one_keeps_the_language_before() -> None:
    switch = LanguageSwitch("en")
    assert switch.choose([("de", 0.84), ("en", 0.16)]) == "de"
    assert switch.choose([("en", 0.4), ("nn", 0.3), ("de", 0.3)]) == "de"
    assert switch.choose([("en", 0.98)]) == "en"


def test_allowed_languages_bound_the_choice() -> None:
    switch = LanguageSwitch("en", allowed=("en", "fr"))
    assert switch.choose([("de", 0.9), ("fr", 0.06), ("en", 0.04)]) == "en"  # fr is not sure enough
    assert switch.choose([("de", 0.2), ("fr", 0.7)]) == "fr"


def test_pauses_are_the_silences_between_speech(audio_dir: Path) -> None:
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    silence = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    found = pauses(np.concatenate([jfk, silence, jfk]))
    jfk_seconds = len(jfk) / SAMPLE_RATE
    # the 2 s of silence (and jfk's own trailing quiet) is one pause; jfk's inner pauses are others
    assert any(a <= jfk_seconds + 0.1 and b >= jfk_seconds + 1.9 for a, b in found), found
    assert all(b - a >= 0.3 for a, b in found)
    assert pauses(np.zeros(5 * SAMPLE_RATE, dtype=np.float32)) == [(0.0, 5.0)]


def _segment(start: float, end: float, text: str) -> Segment:
    return Segment(0, 0, start, end, text, tuple(range(len(text.split()) * 2)), 0.0, -0.1, 1.0, 0.0)


def test_chunks_are_cut_in_the_last_pause_and_the_next_starts_there(audio_dir: Path) -> None:
    """The driver hands the engine chunks that end in a pause; a segment ending right before such
    a cut is kept (it is complete), not decoded again with the next chunk."""
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    gap = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = Audio(np.concatenate([jfk, gap, jfk, gap, jfk, gap, jfk]))  # 48 s
    chunks: list[tuple[float, float]] = []
    position = [0.0]

    def decode(samples: np.ndarray, prompt: str | None) -> object:
        seconds = len(samples) / SAMPLE_RATE
        chunks.append((position[0], position[0] + seconds))
        # one segment per chunk, ending just before its end (what a decoder gives for speech that
        # runs to the cut); the driver shifts times by the chunk's start
        yield _segment(0.0, seconds - 0.5, "words " * int(seconds * 3))

    policy = WindowPolicy(chunk_seconds=30.0)
    segments = []
    for segment in transcribe_windowed(audio, decode, lambda s: [], policy, find_pauses=pauses):
        segments.append(segment)
        position[0] = segment.end  # the next chunk starts where this segment ended
    first_end = chunks[0][1]
    assert 10.0 <= first_end < 30.0  # cut in a pause, not at 30 s
    silent = [(a, b) for a, b in pauses(audio.samples) if a <= first_end <= b]
    assert silent, f"cut at {first_end:.2f} s is not in a pause"
    assert len(segments) == len(chunks)  # each chunk's segment kept: none decoded twice


def test_a_chunk_with_no_speech_is_not_decoded(audio_dir: Path) -> None:
    """Whisper invents text over silence and noise (a "you", digit strings) and spends a window's
    work on it: a chunk where the VAD hears nobody is skipped."""
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(70 * SAMPLE_RATE) * 0.003).astype(np.float32)
    audio = Audio(np.concatenate([jfk, noise, jfk]))  # 92 s: speech, 70 s of quiet noise, speech
    decoded: list[float] = []

    def decode(samples: np.ndarray, prompt: str | None) -> object:
        decoded.append(len(samples) / SAMPLE_RATE)
        yield _segment(0.0, min(10.5, len(samples) / SAMPLE_RATE), "words " * 30)

    policy = WindowPolicy(chunk_seconds=30.0)
    segments = list(transcribe_windowed(audio, decode, lambda s: [], policy, find_pauses=pauses))
    # the first chunk (jfk, then noise: cut in the middle of that pause) and the last one (from the
    # end of the two skipped 30 s chunks of noise after that cut, to the end) are decoded
    assert len(decoded) == 2 and 15.0 < decoded[0] < 30.0, decoded
    last_start = decoded[0] + 60.0
    assert decoded[1] == pytest.approx(92.0 - last_start, abs=0.01) and last_start < 92.0 - 11.0
    assert [round(s.start, 1) for s in segments] == [0.0, round(last_start, 1)]


def test_text_repeating_itself_far_denser_than_speech_is_dropped(audio_dir: Path) -> None:
    """openai-whisper decodes the few frames left after a window's last timestamp as a window of
    their own; conditioned on the text before, 0.32 s came out as one phrase 100 times. Text that
    fails Whisper's compression check at over 25 tokens a second is dropped; speech at speech's
    pace that repeats itself is kept."""
    jfk = decode_audio((audio_dir / "jfk.flac").read_bytes()).samples
    audio = Audio(jfk)
    looped = "Die Genehmigung, " * 100

    def decode(samples: np.ndarray, prompt: str | None) -> object:
        yield _segment(0.0, 4.0, "no no no no no no no no")  # 16 tokens in 4 s, repetitive
        yield Segment(1, 0, 10.5, 10.82, looped, tuple(range(200)), 0.0, -0.2, 9.8, 0.0)

    segments = list(transcribe_windowed(audio, decode, lambda s: [], WindowPolicy(), find_pauses=pauses))
    assert [s.text for s in segments] == ["no no no no no no no no"]


def test_diarization_cuts_a_segment_at_a_turn_pause_heard_in_it() -> None:
    """Whisper may write two turns as one segment: the diarizer's units are cut at the pauses the
    VAD hears inside it (word times are rough: each word goes to the side its middle is on)."""
    from whisper_api.engine.diarize import speech_units
    from whisper_api.engine.types import Word

    words = tuple(
        Word(start, start + 0.4, text, 0.9)
        for start, text in [(0.0, " Thank"), (0.5, " you."), (1.6, " All"), (2.0, " right."), (2.5, " Fine.")]
    )
    segment = Segment(0, 0, 0.0, 2.9, "".join(w.word for w in words), (1, 2, 3), 0.0, -0.1, 1.0, 0.0, words)
    asked: list[tuple[float, float]] = []

    def pauses_in(start: float, end: float) -> list[tuple[float, float]]:
        asked.append((start, end))
        return [(0.95, 1.55), (2.42, 2.5)]  # a turn's pause, and a breath too short to be one

    units = speech_units([segment], pauses_in)
    assert [u.text for u in units] == [" Thank you.", " All right. Fine."]
    assert asked == [(0.0, 2.9)]
    assert speech_units([segment]) == [segment]  # without a VAD: as before (short segments kept whole)
