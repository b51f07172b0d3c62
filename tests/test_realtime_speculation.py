"""The speculative decode at a pause in speech (web/realtime/items.py), with a fake decoder: the
commit that ends the turn takes its text, a resumption drops it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from whisper_api.engine.types import Audio, Segment
from whisper_api.engine.utterance import SpeculationDeclined
from whisper_api.web.realtime.items import ItemTranscriber
from whisper_api.web.realtime.transcribe import Utterance


class Recorder:
    """Stands in for the WebSocket: keeps what would be sent."""

    open = True

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> bool:
        self.events.append(event)
        return True


class Decoder:
    """Says how long the audio was; notes each call; can be held, or decline guesses."""

    def __init__(self, *, decline: bool = False) -> None:
        self.calls: list[tuple[float, bool]] = []
        self.decline = decline
        self.release = threading.Event()
        self.release.set()
        self.stopped = threading.Event()

    def __call__(
        self, utterance: Utterance, *, abandoned: Callable[[], bool] = lambda: False
    ) -> Iterator[Segment]:
        self.calls.append((utterance.audio.duration, utterance.speculative))
        if utterance.speculative and self.decline:
            raise SpeculationDeclined
        self.release.wait(10)
        if abandoned():
            self.stopped.set()
            return
        text = f" {utterance.audio.duration:.1f} seconds"
        yield Segment(0, 0, 0.0, utterance.audio.duration, text, (1,), 0.0, -0.1, 1.0, 0.0)


def _utterance(item_id: str, seconds: float) -> Utterance:
    return Utterance(
        item_id=item_id, audio=Audio(np.zeros(int(seconds * 16_000), dtype=np.float32)), model="m"
    )


def _transcripts(channel: Recorder) -> list[str]:
    return [e["transcript"] for e in channel.events if e["type"].endswith("transcription.completed")]


def _run(decoder: Decoder, steps: Callable[[ItemTranscriber], None]) -> Recorder:
    channel = Recorder()
    items = ItemTranscriber(channel, decoder, "ga")  # type: ignore[arg-type]
    steps(items)
    assert items.close(timeout=10)
    return channel


def test_the_commit_takes_the_text_decoded_at_the_pause() -> None:
    decoder = Decoder()

    def steps(items: ItemTranscriber) -> None:
        items.speculate(_utterance("item_a", 2.0))
        items.submit(_utterance("item_a", 2.4))  # the turn ended: the same speech, more silence

    channel = _run(decoder, steps)
    assert decoder.calls == [(2.0, True)]  # decoded once, at the pause
    assert _transcripts(channel) == ["2.0 seconds"]


def test_speech_that_resumes_drops_the_guess_and_the_commit_decodes_the_whole_turn() -> None:
    decoder = Decoder()
    decoder.release.clear()

    def steps(items: ItemTranscriber) -> None:
        items.speculate(_utterance("item_a", 1.0))
        items.discard("item_a")  # speech resumed while the guess was being decoded
        decoder.release.set()
        items.submit(_utterance("item_a", 3.0))

    channel = _run(decoder, steps)
    assert decoder.calls[-1] == (3.0, False)
    assert _transcripts(channel) == ["3.0 seconds"]
    assert not any(e["type"].endswith(".delta") and "1.0" in e["delta"] for e in channel.events)


def test_a_guess_being_decoded_stops_when_speech_resumes() -> None:
    decoder = Decoder()
    decoder.release.clear()

    def steps(items: ItemTranscriber) -> None:
        items.speculate(_utterance("item_a", 1.0))
        while not decoder.calls:
            threading.Event().wait(0.01)
        items.discard("item_a")
        decoder.release.set()
        assert decoder.stopped.wait(10)

    _run(decoder, steps)


def test_a_declined_guess_leaves_the_commit_to_decode() -> None:
    decoder = Decoder(decline=True)

    def steps(items: ItemTranscriber) -> None:
        items.speculate(_utterance("item_a", 2.0))
        items.submit(_utterance("item_a", 2.4))

    channel = _run(decoder, steps)
    assert decoder.calls == [(2.0, True), (2.4, False)]
    assert _transcripts(channel) == ["2.4 seconds"]


def test_a_guess_for_one_item_is_not_used_for_the_next() -> None:
    decoder = Decoder()

    def steps(items: ItemTranscriber) -> None:
        items.speculate(_utterance("item_a", 2.0))
        items.submit(_utterance("item_a", 2.4))
        items.submit(_utterance("item_b", 1.5))  # a commit with no pause before it

    channel = _run(decoder, steps)
    assert decoder.calls == [(2.0, True), (1.5, False)]
    assert _transcripts(channel) == ["2.0 seconds", "1.5 seconds"]
