"""Batched decoding (WHISPER_API_BATCH_WINDOWS): the words of sequential decoding, no passage lost,
every API feature honoured. Real weights (base), real audio, the real server and the OpenAI SDK."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest

from bench.client import _result
from bench.clips import Clip, build_clips, repeated_ref71
from bench.coverage import check_coverage
from bench.wer import word_error_rate
from tests.support.media import speech_samples, wav_bytes
from tests.support.server import ServerProcess
from tests.text import JFK_REFERENCE, word_errors
from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.batched import BatchPolicy, plan_windows
from whisper_api.engine.faster import DeviceChoice, FasterWhisperTranscriber
from whisper_api.engine.locator import locate_model
from whisper_api.engine.types import Audio, ModelSearch, Transcript, TranscriptionOptions, collect

POLICY = BatchPolicy()
#: Batched and sequential transcripts of the same clip may differ by this share of words. Each
#: batched window is decoded without the text before it (sequential decoding conditions on it), so
#: a word or two per hundred differ (measured: jfk 0, long60 1-2 words, ref71's English 1-2 words:
#: "shall be" heard as "so be").
MAX_DISAGREEMENT = 0.03
#: English WER on the long files: batched decoding measured 2.0-2.8%; sequential 1.8-3.1%.
MAX_WER = 0.035


# --- where windows are cut (no model) --------------------------------------------------------------


def _inside_speech(t: float, spans: list[tuple[float, float]]) -> bool:
    return any(a < t < b for a, b in spans)


def test_windows_are_cut_in_pauses_and_hold_all_the_speech() -> None:
    # Utterances of 2-9 s with pauses of 0.4-2 s, over 200 s.
    rng = np.random.default_rng(7)
    spans, t = [], 0.5
    while t < 195:
        length = float(rng.uniform(2, 9))
        spans.append((t, t + length))
        t += length + float(rng.uniform(0.4, 2.0))
    windows = plan_windows(0.0, 200.0, spans, 100, POLICY, final=True)
    assert all(w.end - w.start <= POLICY.window_seconds + 1e-9 for w in windows)
    assert not any(_inside_speech(w.end, spans) for w in windows)  # never inside an utterance
    for a, b in spans:  # every utterance lies in exactly one window
        assert sum(1 for w in windows if w.start <= a and b <= w.end) == 1
    assert len(windows) <= 200 / 20  # windows are filled, not cut at every pause


def test_a_streamed_request_starts_with_a_short_window() -> None:
    spans = [(0.2, 1.5), (1.9, 3.6), (4.0, 12.0), (12.5, 20.0)]
    first = plan_windows(0.0, 60.0, spans, 1, POLICY, final=True, first_seconds=3.0)
    assert len(first) == 1
    assert 3.6 <= first[0].end <= 4.0  # the first pause after 3 s


def test_speech_that_runs_on_past_the_horizon_waits_for_the_next_round() -> None:
    spans = [(0.5, 10.0), (10.5, 25.0), (25.6, 60.0)]  # the last one reaches the horizon (60 s)
    windows = plan_windows(0.0, 60.0, spans, 4, POLICY, final=False)
    assert windows[-1].end <= 25.6
    assert not _inside_speech(windows[-1].end, spans)


def test_speech_without_a_pause_is_cut_at_the_window_length() -> None:
    windows = plan_windows(0.0, 100.0, [(1.0, 80.0)], 4, POLICY, final=True)
    assert [round(w.end - w.start, 1) for w in windows[:2]] == [30.0, 30.0]
    assert windows[-1].end >= 80.0


def test_silence_is_not_decoded() -> None:
    windows = plan_windows(0.0, 120.0, [(2.0, 5.0), (100.0, 104.0)], 4, POLICY, final=True)
    assert len(windows) == 2
    assert windows[1].start >= 99.0  # the 95 s of silence between them is skipped


# --- the real model ---------------------------------------------------------------------------------


def _transcriber(batch: int) -> FasterWhisperTranscriber:
    location = locate_model("base", ModelSearch(cache_dir=Settings().cache_dir))
    return FasterWhisperTranscriber(
        location, DeviceChoice("cpu", 0, "int8", Settings().cpu_count), None, BatchPolicy(batch_size=batch)
    )


@pytest.fixture(scope="module")
def batched() -> FasterWhisperTranscriber:
    return _transcriber(4)


@pytest.fixture(scope="module")
def sequential() -> FasterWhisperTranscriber:
    return _transcriber(1)


@pytest.fixture(scope="module")
def clips(audio_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Clip]:
    out = tmp_path_factory.mktemp("batched-clips")
    found = build_clips(audio_dir, out, (60.0, 240.0))
    found["ref71x3"] = repeated_ref71(audio_dir, out, 3)
    return found


def _run(model: FasterWhisperTranscriber, clip: Clip, **options: object) -> Transcript:
    audio = decode_audio(clip.path.read_bytes())
    return collect(*model.transcribe(audio, TranscriptionOptions(beam_size=1, **options)))


def _scored(clip: Clip, transcript: Transcript) -> str:
    return _result(clip, [(s.start, s.end, s.text) for s in transcript.segments], 0.0).scored


@pytest.mark.parametrize("name", ["jfk", "ref71", "long60"])
def test_batched_decoding_writes_the_words_of_sequential_decoding(
    name: str, clips: dict[str, Clip], batched: FasterWhisperTranscriber, sequential: FasterWhisperTranscriber
) -> None:
    clip = clips[name]
    ours, theirs = _run(batched, clip), _run(sequential, clip)
    # On the part with known text (ref71: its English half).
    assert word_error_rate(_scored(clip, theirs), _scored(clip, ours)) <= MAX_DISAGREEMENT, (
        f"batched: {ours.text}\nsequential: {theirs.text}"
    )
    coverage = check_coverage(clip.passages, [(s.start, s.end, s.text) for s in ours.segments], clip.duration)
    assert coverage.ok, coverage.describe()
    starts = [s.start for s in ours.segments]
    assert starts == sorted(starts) and [s.id for s in ours.segments] == list(range(len(starts)))


@pytest.mark.parametrize("name", ["long240", "ref71x3"])
def test_a_long_file_loses_no_passage(
    name: str, clips: dict[str, Clip], batched: FasterWhisperTranscriber
) -> None:
    """4 minutes of English passages, and 3.5 minutes switching between English and German."""
    clip = clips[name]
    transcript = _run(batched, clip)
    segments = [(s.start, s.end, s.text) for s in transcript.segments]
    coverage = check_coverage(clip.passages, segments, clip.duration)
    assert coverage.ok, coverage.describe()
    assert word_error_rate(clip.reference, _scored(clip, transcript)) <= MAX_WER


def test_each_window_is_decoded_in_its_own_language(
    clips: dict[str, Clip], batched: FasterWhisperTranscriber
) -> None:
    """ref71 is English, then German: without a language asked, each part comes out in its own."""
    transcript = _run(batched, clips["ref71"])
    assert transcript.info.language == "en"
    english = " ".join(s.text for s in transcript.segments if s.end < 41)
    german = " ".join(s.text for s in transcript.segments if s.start > 42)
    assert "permission is hereby granted" in english.lower()
    assert re.search(r"\b(der|die|und|zu)\b", german), german


def test_word_timestamps_lie_in_their_segments(
    clips: dict[str, Clip], batched: FasterWhisperTranscriber
) -> None:
    transcript = _run(batched, clips["long60"], word_timestamps=True)
    for segment in transcript.segments:
        assert segment.words, segment
        assert "".join(w.word for w in segment.words) == segment.text
        assert all(segment.start - 0.01 <= w.start <= w.end <= segment.end + 0.01 for w in segment.words)


def test_silence_writes_nothing(batched: FasterWhisperTranscriber) -> None:
    """Two minutes of digital silence: no window has speech, so nothing is decoded or invented."""
    audio = Audio(np.zeros(120 * 16_000, dtype=np.float32))
    transcript = collect(*batched.transcribe(audio, TranscriptionOptions(beam_size=1)))
    assert transcript.segments == ()


def test_closing_the_segments_stops_decoding(
    clips: dict[str, Clip], batched: FasterWhisperTranscriber
) -> None:
    """A client that goes away closes the iterator: the batch decoded ahead finishes, no other
    starts, and no thread is left behind."""
    audio = decode_audio(clips["long240"].path.read_bytes())
    threads = threading.active_count()
    _, segments = batched.transcribe(audio, TranscriptionOptions(beam_size=1))
    next(segments)
    segments.close()
    started = time.process_time()  # every thread of this process
    time.sleep(2.0)
    assert time.process_time() - started < 0.3
    assert threading.active_count() == threads
    with pytest.raises(StopIteration):
        next(segments)


# --- through the server and the SDK -----------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("batched-server") / "server.log"
    env = {"WHISPER_MODEL": "base", "WHISPER_API_BATCH_WINDOWS": "4", "WHISPER_API_LOG_LEVEL": "info"}
    process = ServerProcess(env, log).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-local", max_retries=0, timeout=300)


def test_sdk_word_and_segment_timestamps(client: openai.OpenAI, jfk_bytes: bytes) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=("jfk.flac", jfk_bytes),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert word_errors(JFK_REFERENCE, result.text) <= 2
    assert [w.word for w in result.words][:3] == ["And", "so", "my"]
    assert all(0 <= w.start <= w.end <= result.duration + 0.01 for w in result.words)
    assert result.segments and result.segments[-1].end <= result.duration + 0.01


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # the SDK deprecates translations
def test_sdk_language_and_translation(client: openai.OpenAI, audio_dir: Path) -> None:
    clip = (audio_dir / "multilingual.mp3").read_bytes()
    english = client.audio.transcriptions.create(
        model="whisper-1", file=("m.mp3", clip), language="en", response_format="verbose_json"
    )
    assert english.language == "english"
    assert not re.search(r"\b(der|und|zu)\b", english.text)  # the German half is written in English
    translated = client.audio.translations.create(model="whisper-1", file=("m.mp3", clip))
    assert "software" in translated.text.lower()
    assert not re.search(r"\b(der|und|zu)\b", translated.text)


def test_sdk_prompt_and_keywords_reach_the_decoder(client: openai.OpenAI, audio_dir: Path) -> None:
    clip = (audio_dir / "hotwords.mp3").read_bytes()
    plain = client.audio.transcriptions.create(model="gpt-transcribe", file=("h.mp3", clip)).text
    assert "ComfyUI" not in plain
    biased = client.audio.transcriptions.create(
        model="gpt-transcribe", file=("h.mp3", clip), keywords=["ComfyUI"]
    ).text
    assert "ComfyUI" in biased
    prompted = client.audio.transcriptions.create(
        model="whisper-1", file=("h.mp3", clip), prompt="A tutorial about ComfyUI."
    ).text
    assert "ComfyUI" in prompted


def test_sdk_stream_and_logprobs(client: openai.OpenAI, jfk_bytes: bytes) -> None:
    stream = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("jfk.flac", jfk_bytes), include=["logprobs"], stream=True
    )
    events = list(stream)
    deltas = [e for e in events if e.type == "transcript.text.delta"]
    done = events[-1]
    assert done.type == "transcript.text.done" and len(deltas) >= 2  # a short first window, then the rest
    assert "".join(e.delta for e in deltas).strip() == done.text
    assert word_errors(JFK_REFERENCE, done.text) <= 2
    assert all(lp.logprob < 0 for lp in done.logprobs)
    assert "".join(lp.token for lp in done.logprobs).strip() == done.text


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_sdk_disconnect_stops_decoding(server: ServerProcess, client: openai.OpenAI, audio_dir: Path) -> None:
    long_wav = wav_bytes(np.tile(speech_samples((audio_dir / "multilingual.mp3").read_bytes()), 4))
    stream = client.audio.transcriptions.create(model="whisper-1", file=("long.wav", long_wav), stream=True)
    assert next(iter(stream)).type == "transcript.text.delta"
    stream.close()
    deadline = time.monotonic() + 60
    pattern = r"client closed the transcription stream after \d+ segments \(([\d.]+) of ([\d.]+) s\)"
    while not (found := re.search(pattern, server.log_path.read_text(errors="replace"))):
        assert time.monotonic() < deadline, server.log()
        time.sleep(0.2)
    assert float(found.group(1)) < float(found.group(2)) / 2
    worker = int(
        Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()[0]
    )
    time.sleep(0.5)
    before = _cpu_seconds(worker)
    time.sleep(3.0)
    assert _cpu_seconds(worker) - before < 0.5  # nothing left decoding in the background
