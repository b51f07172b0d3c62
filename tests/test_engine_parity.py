"""openai-whisper and faster-whisper on the same (converted) weights give the same words and times."""

from __future__ import annotations

import difflib
import re
import statistics
from pathlib import Path

import pytest

from whisper_api.config import Settings
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.checkpoints import locate_checkpoint
from whisper_api.engine.faster import DeviceChoice, FasterWhisperTranscriber
from whisper_api.engine.locator import locate_model
from whisper_api.engine.openai_whisper import OpenAIWhisperTranscriber, choose_torch_device
from whisper_api.engine.types import ModelSearch, Segment, Transcriber, TranscriptionOptions, Word, collect

pytestmark = pytest.mark.multilingual
CLIPS = ("jfk.flac", "multilingual.mp3")
#: With each window decoded in its own language, both engines write the German half in German and
#: agree on the first 131 words; one German word differs ("kopilen"/"kopien") where the two
#: implementations' float32 arithmetic parts, so the same-words test is expected to fail there.
#: The word times are compared on the words both engines write, on both clips.
SAME_WORDS_CLIPS = (
    "jfk.flac",
    pytest.param(
        "multilingual.mp3",
        marks=pytest.mark.xfail(reason="one German word differs (float32 arithmetic)", strict=False),
    ),
)
THREADS = Settings().cpu_count


class WithoutFallback(TranscriptionOptions):
    """Temperature 0 only: a fallback samples at random, so its words could not be compared."""

    @property
    def temperatures(self) -> tuple[float, ...]:
        return (0.0,)


def normalised(word: str) -> str:
    return re.sub(r"[^\w']", "", word.lower())


def timed_segments(transcriber: Transcriber, audio_dir: Path, clip: str) -> list[Segment]:
    audio = decode_audio((audio_dir / clip).read_bytes())
    return list(collect(*transcriber.transcribe(audio, WithoutFallback(word_timestamps=True))).segments)


def words_of(segments: list[Segment]) -> list[Word]:
    return [w for s in segments for w in s.words]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity-cache")


@pytest.fixture(scope="module")
def transcripts(audio_dir: Path, cache_dir: Path) -> dict[str, dict[str, list[Segment]]]:
    """Segments per engine and clip, each clip decoded once per engine (the 60 s clip is slow)."""
    ct2 = locate_model("base", ModelSearch(cache_dir=cache_dir))
    engines: dict[str, Transcriber] = {
        "openai-whisper": OpenAIWhisperTranscriber(
            locate_checkpoint("base", ModelSearch(cache_dir=cache_dir, offline=True)),
            choose_torch_device("cpu", THREADS),
        ),
        "float32": FasterWhisperTranscriber(ct2, DeviceChoice("cpu", 0, "float32", THREADS)),
        "int8": FasterWhisperTranscriber(ct2, DeviceChoice("cpu", 0, "int8", THREADS)),
    }
    return {name: {clip: timed_segments(t, audio_dir, clip) for clip in CLIPS} for name, t in engines.items()}


@pytest.fixture(scope="module")
def results(transcripts: dict[str, dict[str, list[Segment]]]) -> dict[str, dict[str, list[Word]]]:
    """Word lists per engine and clip."""
    return {
        name: {clip: words_of(segments) for clip, segments in clips.items()}
        for name, clips in transcripts.items()
    }


def matching_words(a: list[Word], b: list[Word]) -> tuple[list[Word], list[Word]]:
    """The words of `a` and `b` that line up as equal after normalisation."""
    matcher = difflib.SequenceMatcher(
        a=[normalised(w.word) for w in a], b=[normalised(w.word) for w in b], autojunk=False
    )
    pairs = [(a[m.a + k], b[m.b + k]) for m in matcher.get_matching_blocks() for k in range(m.size)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def median_shift(a: list[Word], b: list[Word]) -> float:
    return statistics.median(
        [abs(x.start - y.start) for x, y in zip(a, b, strict=True)]
        + [abs(x.end - y.end) for x, y in zip(a, b, strict=True)]
    )


@pytest.mark.parametrize("clip", SAME_WORDS_CLIPS)
def test_same_words_as_faster_whisper_float32(results: dict, clip: str) -> None:
    ours = [normalised(w.word) for w in results["openai-whisper"][clip]]
    theirs = [normalised(w.word) for w in results["float32"][clip]]
    assert ours == theirs


@pytest.mark.parametrize("clip", CLIPS)
def test_word_times_match_faster_whisper_float32(results: dict, clip: str) -> None:
    """The times of the words both engines agree on (all of them on jfk)."""
    ours, theirs = matching_words(results["openai-whisper"][clip], results["float32"][clip])
    assert len(ours) >= 0.95 * len(results["openai-whisper"][clip])
    assert median_shift(ours, theirs) <= 0.05


@pytest.mark.parametrize("clip", CLIPS)
def test_word_times_match_the_int8_default_in_the_median(results: dict, clip: str) -> None:
    """int8 may decode a few words differently: the times of the words both agree on are compared."""
    ours, int8 = matching_words(results["openai-whisper"][clip], results["int8"][clip])
    assert len(ours) >= 0.9 * len(results["openai-whisper"][clip])
    assert median_shift(ours, int8) <= 0.05


def test_openai_whisper_writes_each_window_in_its_own_language(results: dict) -> None:
    """openai-whisper's `transcribe()` keeps one language per call: it gets one-window chunks when
    the windows switch language (with 240 s chunks it wrote the German half's end in English)."""
    words = results["openai-whisper"]["multilingual.mp3"]
    german = [normalised(w.word) for w in words if w.start > 31.0]
    assert german.count("zu") >= 5 and german.count("software") >= 2, german
    assert not {"the", "to", "and"} & set(german), german


def test_no_segment_without_text(transcripts: dict) -> None:
    """openai-whisper clears the text of an instantaneous segment but keeps it (one at the end of
    multilingual.mp3); a transcript has none."""
    empty = [
        (name, clip, s.start)
        for name, clips in transcripts.items()
        for clip, segments in clips.items()
        for s in segments
        if not s.text.strip()
    ]
    assert not empty
