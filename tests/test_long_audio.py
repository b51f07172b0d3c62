"""Long audio: windowed decoding loses no passage, repeats none, and keeps a worker's memory flat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
import requests

from bench.client import scored_text
from bench.clips import build_clips, repeated_ref71
from bench.coverage import Passage, check_coverage
from bench.server import peak_rss_bytes
from bench.wer import word_error_rate
from tests.support.longaudio import repeated_wav
from tests.support.media import silent_flac
from tests.support.server import ServerProcess
from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.faster import DeviceChoice, FasterWhisperTranscriber
from whisper_api.engine.locator import locate_model
from whisper_api.engine.types import ModelSearch, Transcript, TranscriptionOptions, collect
from whisper_api.engine.windows import AudioReader, WindowPolicy

THREADS = Settings().cpu_count
#: After a 20-minute upload (longer than the server keeps decoded, WHISPER_API_DECODED_AUDIO_SECONDS
#: = 600, so every path has run once), a 1 h upload may raise a worker's peak memory by at most
#: this much. Measured: 3-21 MiB. (The base was a 10-minute upload until a CI run failed: 600 s is
#: kept decoded, not decoded again, and the hour's peak sat 42-47 MiB above it, flat over the hour.)
#: The hour decoded at once would add about 230 MiB, and the seed's features of it gigabytes. The
#: absolute peak depends on the machine's libraries (274 MiB before the uploads here, 317 MiB in
#: CI), so the test bounds the growth with the file's length, which is the claim.
HOUR_OVER_TWENTY_MINUTES_MIB = 40
#: ...and the worker's peak stays under this, whatever ran before (tiny.en, no voice preloaded).
PEAK_RSS_LIMIT_MIB = 600
#: English WER on ref71x9 (`base` int8): the default 240 s chunks measured 3.9%, 30 s chunks 3.1%;
#: the whole file at once, as before, 13.4% (passages dropped and paraphrased); openai-whisper's
#: transcribe() (the bench's baseline) 24.6%, six passages dropped.
MAX_WER = 0.045


class WithoutFallback(TranscriptionOptions):
    """Temperature 0 only: a repeated clip sets off the compression-ratio fallback, which samples."""

    @property
    def temperatures(self) -> tuple[float, ...]:
        return (0.0,)


def transcriber(name: str, policy: WindowPolicy | None = None) -> FasterWhisperTranscriber:
    location = locate_model(name, ModelSearch(cache_dir=Settings().cache_dir))
    return FasterWhisperTranscriber(location, DeviceChoice("cpu", 0, "int8", THREADS), policy)


def transcript(model: FasterWhisperTranscriber, path: Path, **options: object) -> Transcript:
    audio = decode_audio(path.read_bytes(), keep_seconds=120)
    return collect(*model.transcribe(audio, TranscriptionOptions(beam_size=1, **options)))


def segments(result: Transcript) -> list[tuple[float, float, str]]:
    return [(s.start, s.end, s.text) for s in result.segments]


@pytest.fixture(scope="module")
def tiny() -> FasterWhisperTranscriber:
    return transcriber("tiny.en")


# --- the coverage check itself -------------------------------------------------------------------


def test_coverage_flags_a_dropped_passage() -> None:
    passages = [Passage(0, 10, "one two three four five six"), Passage(11, 20, "seven eight nine ten eleven")]
    result = check_coverage(passages, [(0, 9, "one two three four five six")], 20)
    assert [p.passage.start for p in result.dropped] == [11]


def test_coverage_flags_a_repeated_passage() -> None:
    text = "ask not what your country can do for you"
    result = check_coverage([Passage(0, 10, text)], [(0, 5, text), (5, 10, text)], 10)
    assert result.repeated and not result.dropped


def test_coverage_flags_text_over_silence() -> None:
    result = check_coverage([Passage(0, 10, "a b c d")], [(0, 9, "a b c d"), (40, 50, "thank you")], 60)
    assert [start for start, _, _ in result.invented] == [40]


# --- streamed audio ------------------------------------------------------------------------------


def test_audio_longer_than_kept_is_decoded_again_to_the_same_samples(jfk_bytes: bytes) -> None:
    data = repeated_wav(jfk_bytes, 3)
    whole = decode_audio(data)
    streamed = decode_audio(data, keep_seconds=5)
    assert streamed.streamed and streamed.samples.size == 0
    assert streamed.frames == whole.frames
    reader = AudioReader(streamed)
    assert np.array_equal(reader.read(3.0, 12.5), whole.samples[48_000:200_000])
    assert np.array_equal(reader.read(30.0, 40.0), whole.samples[480_000:640_000])
    reader.close()


def test_streamed_and_kept_audio_give_the_same_words(
    tiny: FasterWhisperTranscriber, jfk_bytes: bytes
) -> None:
    data = repeated_wav(jfk_bytes, 4, silence_after=5)
    options = WithoutFallback(beam_size=1, word_timestamps=True)
    kept = collect(*tiny.transcribe(decode_audio(data), options))
    streamed = collect(*tiny.transcribe(decode_audio(data, keep_seconds=5), options))
    assert streamed.text == kept.text
    assert [w.word for s in streamed.segments for w in s.words] == [
        w.word for s in kept.segments for w in s.words
    ]


def test_windows_number_segments_in_order_with_absolute_word_times(
    tiny: FasterWhisperTranscriber, audio_dir: Path, tmp_path: Path
) -> None:
    clip = build_clips(audio_dir, tmp_path, (90.0,))["long90"]  # jfk, the licence, two voices...
    result = collect(
        *tiny.transcribe(
            decode_audio(clip.path.read_bytes()), TranscriptionOptions(beam_size=1, word_timestamps=True)
        )
    )
    assert [s.id for s in result.segments] == list(range(len(result.segments)))
    starts = [w.start for s in result.segments for w in s.words]
    assert starts == sorted(starts) and starts[-1] > 80
    jfk_passages = sum(1 for p in clip.passages if p.text and "fellow Americans" in p.text)
    assert jfk_passages >= 2
    assert result.text.lower().count("fellow americans") == jfk_passages


# --- no passage lost on long audio ---------------------------------------------------------------


def test_long_english_file_loses_and_repeats_nothing(
    tiny: FasterWhisperTranscriber, audio_dir: Path, tmp_path: Path
) -> None:
    clip = build_clips(audio_dir, tmp_path, (240.0,))["long240"]
    result = transcript(tiny, clip.path)
    coverage = check_coverage(clip.passages, segments(result), clip.duration)
    assert coverage.ok, coverage.describe()


@pytest.mark.multilingual
def test_language_switching_file_loses_no_passage(audio_dir: Path, tmp_path: Path) -> None:
    """ref71 nine times (10.6 min, English and German in turn): whole passages used to go missing."""
    clip = repeated_ref71(audio_dir, tmp_path, 9)
    result = transcript(transcriber("base"), clip.path)
    coverage = check_coverage(clip.passages, segments(result), clip.duration)
    assert coverage.ok, coverage.describe()
    wer = word_error_rate(clip.reference, scored_text(clip, [(s.start, s.text) for s in result.segments]))
    assert wer <= MAX_WER


# --- memory stays flat ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lean_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    log = tmp_path_factory.mktemp("long-audio") / "server.log"
    # Transcription alone: a preloaded voice (text to speech) would add its own ~140 MiB to the worker.
    env = {"WHISPER_MODEL": "tiny.en", "WHISPER_API_PRELOAD_VOICE": "0"}
    server = ServerProcess(env, log).start()
    try:
        yield server
    finally:
        server.stop()


def test_an_hour_of_silence_keeps_a_worker_under_its_memory_bound(lean_server: ServerProcess) -> None:
    assert lean_server.process is not None
    workers = psutil.Process(lean_server.process.pid).children()
    assert len(workers) == 1

    def transcribe_silence(seconds: int) -> int:
        response = requests.post(
            lean_server.base_url + "/v1/audio/transcriptions",
            files={"file": ("silence.flac", silent_flac(seconds), "audio/flac")},
            data={"model": "tiny.en", "response_format": "verbose_json"},
            timeout=900,
        )
        assert response.status_code == 200, response.text
        assert response.json()["duration"] == pytest.approx(seconds, abs=1)
        peak = peak_rss_bytes(workers[0].pid)
        assert peak is not None
        return peak

    twenty_minutes = transcribe_silence(1200)
    hour = transcribe_silence(3600)
    assert (hour - twenty_minutes) / 2**20 < HOUR_OVER_TWENTY_MINUTES_MIB, (
        f"peak {hour / 2**20:.0f} MiB after the hour, {twenty_minutes / 2**20:.0f} MiB after 20 minutes"
    )
    assert hour / 2**20 < PEAK_RSS_LIMIT_MIB


def test_a_stream_over_long_audio_sends_every_window_as_it_goes(
    lean_server: ServerProcess, jfk_bytes: bytes
) -> None:
    # 132 s, the same 11 s twelve times: a window conditioned on the identical passage before it
    # loops; it is decoded again without that text, and when that fails too, faster-whisper's
    # temperature fallback samples (CTranslate2's generator cannot be seeded per request): one run
    # in several of the full suite wrote 11 of the 12 passages.
    data = repeated_wav(jfk_bytes, 12)
    deltas = []
    done = ""
    with requests.post(
        lean_server.base_url + "/v1/audio/transcriptions",
        files={"file": ("long.wav", data, "audio/wav")},
        data={"model": "tiny.en", "stream": "true"},
        stream=True,
        timeout=600,
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith(b"data:") or line.strip() == b"data: [DONE]":
                continue
            event = json.loads(line[5:])
            if event["type"] == "transcript.text.delta":
                deltas.append(event["delta"])
            elif event["type"] == "transcript.text.done":
                done = event["text"]
    assert len(deltas) >= 12  # every window sent as it is decoded
    assert 11 <= done.lower().count("fellow americans") <= 12


# --- bounded work per window ---------------------------------------------------------------------


def test_a_window_decodes_no_more_tokens_than_its_limit(jfk_bytes: bytes) -> None:
    limited = transcriber("tiny.en", WindowPolicy(max_window_tokens=12))
    result = collect(*limited.transcribe(decode_audio(jfk_bytes), WithoutFallback(beam_size=1)))
    assert result.segments
    assert all(len(s.tokens) <= 12 for s in result.segments)


@pytest.mark.parametrize("prompt", ["country " * 200, "Ha" * 300, "! " * 150])
def test_a_repeated_prompt_cannot_make_a_window_decode_past_the_limit(
    tiny: FasterWhisperTranscriber, jfk_bytes: bytes, prompt: str
) -> None:
    audio = decode_audio(jfk_bytes)
    result = collect(*tiny.transcribe(audio, TranscriptionOptions(beam_size=1, prompt=prompt)))
    windows = {s.seek for s in result.segments}
    limit = tiny.windows.window_tokens
    for seek in windows:
        assert sum(len(s.tokens) for s in result.segments if s.seek == seek) <= limit
