"""A live utterance on faster-whisper's quick road (engine/utterance.py): the utterance encoded at
its own length, the language read from that encoder pass, checked as Whisper checks a window."""

from __future__ import annotations

import numpy as np
import pytest

from bench.clips import JFK_TEXT
from bench.wer import word_error_rate
from whisper_api.config import Settings
from whisper_api.engine import utterance
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.faster import DeviceChoice, FasterWhisperTranscriber
from whisper_api.engine.locator import locate_model
from whisper_api.engine.turns import InputBuffer, SpeechStopped, TurnDetection
from whisper_api.engine.types import Audio, ModelSearch, TranscriptionOptions, collect
from whisper_api.engine.utterance import SpeculationDeclined

pytestmark = pytest.mark.multilingual


@pytest.fixture(scope="module")
def base() -> FasterWhisperTranscriber:
    location = locate_model("base", ModelSearch(cache_dir=Settings().cache_dir))
    return FasterWhisperTranscriber(location, DeviceChoice("cpu", 0, "int8", 2))


@pytest.fixture(scope="module")
def jfk_turns(jfk_bytes: bytes) -> list[Audio]:
    """jfk as the server's VAD cuts it into utterances (OpenAI's defaults)."""
    speech = decode_audio(jfk_bytes).samples
    buffer = InputBuffer(TurnDetection())
    stream = np.concatenate([speech, np.zeros(16_000, dtype=np.float32)])
    events = [e for i in range(0, len(stream), 640) for e in buffer.append(stream[i : i + 640])]
    return [e.audio for e in events if isinstance(e, SpeechStopped)]


def test_utterances_get_the_words_of_the_full_window(
    base: FasterWhisperTranscriber, jfk_turns: list[Audio]
) -> None:
    live = [collect(*base.transcribe(a, TranscriptionOptions(beam_size=1, live=True))) for a in jfk_turns]
    assert all(t.info.language == "en" for t in live)
    assert all(len(t.segments) == 1 and t.segments[0].temperature == 0 for t in live)
    text = " ".join(s.text for t in live for s in t.segments)
    assert word_error_rate(JFK_TEXT, text) == 0


def test_the_quick_road_encodes_fewer_frames_than_a_window(
    base: FasterWhisperTranscriber, jfk_turns: list[Audio], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    model = base._model.model
    encode = model.encode

    class Spy:
        """The CTranslate2 model, with its encoder's input lengths written down."""

        def __getattr__(self, name: str) -> object:
            return getattr(model, name)

        def encode(self, features: object, **kwargs: object) -> object:
            seen.append(features.shape[-1])  # type: ignore[attr-defined]
            return encode(features, **kwargs)

    monkeypatch.setattr(base._model, "model", Spy())
    collect(*base.transcribe(jfk_turns[0], TranscriptionOptions(beam_size=1, live=True)))
    assert seen == [utterance.MIN_FRAMES]  # one encoder pass (language detection included), 10 s


def test_a_looping_decode_goes_back_to_the_full_window(
    base: FasterWhisperTranscriber, jfk_turns: list[Audio], monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no padding and no minimum window the decoder loops on this utterance ("ASK NOT" over
    # and over, measured): the checks must send it to the full-window decode.
    monkeypatch.setattr(utterance, "PAD_FRAMES", 0)
    monkeypatch.setattr(utterance, "MIN_FRAMES", 0)
    options = TranscriptionOptions(beam_size=1, live=True, language="en")
    outcomes = [utterance.decode_short(base._model, a.samples, options, 220) for a in jfk_turns]
    assert not all(o.accepted for o in outcomes)
    looping = next(a for a, o in zip(jfk_turns, outcomes, strict=True) if not o.accepted)
    transcript = collect(*base.transcribe(looping, options))
    assert transcript.segments and transcript.segments[0].compression_ratio < 2.4
    with pytest.raises(SpeculationDeclined):
        base.transcribe(
            looping, TranscriptionOptions(beam_size=1, live=True, speculative=True, language="en")
        )


def test_logprobs_score_each_token_of_the_utterance(
    base: FasterWhisperTranscriber, jfk_turns: list[Audio]
) -> None:
    options = TranscriptionOptions(beam_size=1, live=True, logprobs=True)
    (segment,) = collect(*base.transcribe(jfk_turns[-1], options)).segments
    assert len(segment.logprobs) == len(segment.tokens)
    assert "".join(t.token for t in segment.logprobs) == segment.text
    assert all(t.logprob <= 0 for t in segment.logprobs)
    # Teacher-forced scores of the greedy text add up to the decoder's own score of it (less the
    # end-of-text token, which is not a text token).
    assert sum(t.logprob for t in segment.logprobs) >= segment.avg_logprob * (len(segment.tokens) + 1) - 1e-3


def test_a_text_that_reaches_the_token_budget_is_decoded_again_whole(
    base: FasterWhisperTranscriber, jfk_turns: list[Audio], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(utterance, "TOKENS_PER_SECOND", 1)
    monkeypatch.setattr(utterance, "MIN_TOKENS", 4)  # "Ask what you can do for your country." is 9
    options = TranscriptionOptions(beam_size=1, live=True, language="en")
    assert not utterance.decode_short(base._model, jfk_turns[-1].samples, options, 220).accepted
    (segment,) = collect(*base.transcribe(jfk_turns[-1], options)).segments
    assert word_error_rate("ask what you can do for your country", segment.text) == 0
