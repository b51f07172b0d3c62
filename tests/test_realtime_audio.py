"""The engine side of live audio: raw PCM and G.711 in, 16 kHz out, and speech turns found by the
streaming Silero VAD on real speech."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.live import pcm16
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.pcm import InputFormat, PcmDecoder, _alaw_table, _mulaw_table
from whisper_api.engine.turns import (
    InputBuffer,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    StreamingVad,
    TurnDetection,
    TurnEvent,
)


def test_g711_tables_match_the_itu_reference_points() -> None:
    mulaw, alaw = _mulaw_table(), _alaw_table()
    assert mulaw[0xFF] == 0 and mulaw[0x7F] == 0  # mu-law's two zeros
    assert mulaw[0x00] == -32124 and mulaw[0x80] == 32124  # loudest codes
    assert alaw[0xD5] == 8 and alaw[0x55] == -8  # A-law's smallest steps
    assert alaw[0xAA] == 32256 and alaw[0x2A] == -32256


def test_pcm16_split_mid_sample_decodes_like_one_chunk(jfk_bytes: bytes) -> None:
    data = pcm16(jfk_bytes, rate=24_000)[: 24_000 * 2]
    whole = PcmDecoder(InputFormat("pcm16", 24_000)).decode(data)
    pieces = PcmDecoder(InputFormat("pcm16", 24_000))
    parts = [pieces.decode(data[i : i + 961]) for i in range(0, len(data), 961)]  # odd: splits samples
    streamed = np.concatenate(parts)
    assert abs(len(streamed) - 16_000) <= 64
    n = min(len(whole), len(streamed))
    assert np.abs(whole[:n] - streamed[:n]).max() < 1e-3


def test_g711_speech_resampled_to_16k_keeps_its_length(jfk_bytes: bytes) -> None:
    linear = pcm16(jfk_bytes, rate=8_000)
    samples = np.frombuffer(linear, dtype="<i2")
    codes = (
        np.abs(_mulaw_table()[None, :].astype(np.int32) - samples[:, None]).argmin(axis=1).astype(np.uint8)
    )
    out = PcmDecoder(InputFormat("pcmu", 8_000)).decode(codes.tobytes())
    assert len(out) / 16_000 == pytest.approx(11.0, abs=0.1)
    assert 0.05 < np.abs(out).max() < 1.2  # resampling may ring a little past full scale


def test_streaming_vad_scores_equal_whole_recording_scores(jfk_bytes: bytes) -> None:
    samples = decode_audio(jfk_bytes).samples[: 512 * 100]
    whole = StreamingVad().feed(samples)
    vad = StreamingVad()
    streamed = np.concatenate([vad.feed(samples[i : i + 700]) for i in range(0, len(samples), 700)])
    assert np.allclose(whole, streamed, atol=1e-5)


def _turns(samples: np.ndarray, detection: TurnDetection, *, pauses: bool = False) -> list[TurnEvent]:
    buffer = InputBuffer(detection)
    events = []
    for i in range(0, len(samples), 640):  # 40 ms chunks
        events += buffer.append(samples[i : i + 640])
    return events if pauses else [e for e in events if isinstance(e, SpeechStarted | SpeechStopped)]


def test_two_utterances_separated_by_silence_are_two_turns(jfk_bytes: bytes) -> None:
    speech = decode_audio(jfk_bytes).samples
    gap = np.zeros(16_000 * 2, dtype=np.float32)
    events = _turns(
        np.concatenate([speech, gap, speech[: 16_000 * 4], gap]), TurnDetection(silence_duration_ms=1200)
    )
    assert [type(e) for e in events] == [SpeechStarted, SpeechStopped] * 2
    first, second = events[1], events[3]
    assert isinstance(first, SpeechStopped) and isinstance(second, SpeechStopped)
    assert first.audio.duration == pytest.approx(11.0 + 1.2, abs=0.6)
    assert events[2].audio_start_ms == pytest.approx(13_000, abs=400)  # type: ignore[union-attr]


def test_shorter_silence_duration_cuts_at_the_speakers_pauses(jfk_bytes: bytes) -> None:
    speech = decode_audio(jfk_bytes).samples
    events = _turns(
        np.concatenate([speech, np.zeros(16_000, dtype=np.float32)]), TurnDetection(silence_duration_ms=300)
    )
    assert sum(isinstance(e, SpeechStopped) for e in events) >= 3


def test_prefix_padding_is_kept_before_speech(jfk_bytes: bytes) -> None:
    speech = decode_audio(jfk_bytes).samples[: 16_000 * 3]
    stream = np.concatenate([np.zeros(16_000, dtype=np.float32), speech, np.zeros(16_000, dtype=np.float32)])
    tight, padded = (_turns(stream, TurnDetection(prefix_padding_ms=ms)) for ms in (0, 500))
    assert isinstance(tight[0], SpeechStarted) and isinstance(padded[0], SpeechStarted)
    assert tight[0].audio_start_ms >= 1000  # the lead-in silence is not speech
    assert padded[0].audio_start_ms == tight[0].audio_start_ms - 500
    assert isinstance(tight[1], SpeechStopped) and isinstance(padded[1], SpeechStopped)
    assert padded[1].audio.duration == pytest.approx(tight[1].audio.duration + 0.5, abs=0.001)


def test_manual_buffer_commits_everything_and_clears() -> None:
    buffer = InputBuffer(None)
    assert buffer.append(np.ones(8_000, dtype=np.float32)) == []
    assert buffer.seconds == 0.5
    assert buffer.commit().duration == 0.5
    assert buffer.seconds == 0
    buffer.append(np.ones(800, dtype=np.float32))
    buffer.clear()
    assert buffer.commit().duration == 0


def test_a_pause_gives_the_utterance_so_far_and_the_stop_that_follows_holds_the_same_speech(
    jfk_bytes: bytes,
) -> None:
    speech = decode_audio(jfk_bytes).samples
    events = _turns(
        np.concatenate([speech, np.zeros(16_000, dtype=np.float32)]), TurnDetection(), pauses=True
    )
    kinds = [type(e) for e in events]
    stops = [i for i, kind in enumerate(kinds) if kind is SpeechStopped]
    assert len(stops) >= 3  # jfk's phrases, with OpenAI's 500 ms of silence
    for i in stops:  # every stop follows a pause, with no resumption between them
        paused = max(j for j in range(i) if kinds[j] is SpeechPaused)
        assert SpeechResumed not in kinds[paused:i] and SpeechStarted not in kinds[paused:i]
        pause, stop = events[paused], events[i]
        assert isinstance(pause, SpeechPaused) and isinstance(stop, SpeechStopped)
        # The pause came 150 ms into the silence, the stop 500 ms: the same speech, less silence.
        assert stop.audio.duration - pause.audio.duration == pytest.approx(0.35, abs=0.04)
        assert np.array_equal(pause.audio.samples, stop.audio.samples[: pause.audio.frames])
    # "Ask not ... what": a pause shorter than the turn's silence, then speech again.
    assert SpeechResumed in kinds
    resumed = kinds.index(SpeechResumed)
    assert kinds[resumed - 1] is SpeechPaused
