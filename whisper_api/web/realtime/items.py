"""A session's committed utterances, transcribed one after another on the session's own thread,
each answered with `delta` events, then `completed` (or `failed`).

The same thread also decodes speculatively: when speech pauses (engine/turns.py), the utterance so
far is decoded at once, and its segments wait, unsent. If the turn ends there, the commit takes
them instead of decoding again, so the transcript follows the end of the turn at once; if speech
resumes, they are dropped (a decode still running is stopped).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any, Protocol

from whisper_api.engine.types import Segment
from whisper_api.errors import ApiError, ClientDisconnectedError
from whisper_api.web.formatting import render_logprobs
from whisper_api.web.realtime import metrics
from whisper_api.web.realtime.channel import Channel
from whisper_api.web.realtime.config import Generation
from whisper_api.web.realtime.transcribe import Utterance

logger = logging.getLogger(__name__)


class Transcribe(Protocol):
    """Decodes one utterance (web/realtime/transcribe.py); stops when `abandoned()` turns true."""

    def __call__(self, utterance: Utterance, *, abandoned: Callable[[], bool] = ...) -> Iterator[Segment]: ...


@dataclass(eq=False)
class _Speculation:
    """A decode started at a pause, for the item the pause belongs to."""

    utterance: Utterance
    results: dict[str, tuple[Segment, ...]] = field(default_factory=dict)  # by task, once decoded


_STOP = None


def user_item(item_id: str, transcript: str | None, *, done: bool) -> dict[str, Any]:
    """The conversation item that holds an utterance (its audio is never sent back)."""
    return {
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed" if done else "in_progress",
        "role": "user",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


class ItemTranscriber:
    """Transcribes committed utterances in order on one thread; `close` stops it and waits."""

    def __init__(self, channel: Channel, transcribe: Transcribe, generation: Generation) -> None:
        self._channel = channel
        self._transcribe = transcribe
        self._generation = generation
        self._queue: queue.Queue[Utterance | _Speculation | None] = queue.Queue()
        self._speculations: dict[str, _Speculation] = {}  # by item id: the live one of each item
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="realtime-items", daemon=True)
        self._thread.start()

    def submit(self, utterance: Utterance) -> None:
        self._queue.put(utterance)

    def speculate(self, utterance: Utterance) -> None:
        """Decode the utterance so far (speech paused); its commit may use the result."""
        speculation = _Speculation(dataclasses.replace(utterance, speculative=True))
        with self._lock:
            self._speculations[utterance.item_id] = speculation
        self._queue.put(speculation)

    def discard(self, item_id: str | None) -> None:
        """Speech resumed (or the buffer was cleared): the item's speculative decode is void."""
        with self._lock:
            dropped = self._speculations.pop(item_id or "", None)
        if dropped is not None:
            metrics.SPECULATIONS.labels(outcome="discarded").inc()

    @property
    def busy(self) -> bool:
        """Utterances are waiting or being transcribed (the client is waiting for us, not idle)."""
        return self._queue.unfinished_tasks > 0

    def close(self, timeout: float | None = None) -> bool:
        """Finish what was submitted (or stop at once if the client is gone); True when stopped."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (work := self._queue.get()) is not _STOP:
            try:
                if isinstance(work, _Speculation):
                    self._speculate(work)
                else:
                    self._answer_safely(work)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _current(self, speculation: _Speculation) -> bool:
        with self._lock:
            return self._speculations.get(speculation.utterance.item_id) is speculation

    def _speculate(self, speculation: _Speculation) -> None:
        """Decode what the commit will need, keeping the segments (nothing is sent)."""
        abandoned = lambda: not self._current(speculation)  # noqa: E731
        for task in self._tasks(speculation.utterance):
            if abandoned():
                return
            try:
                with closing(self._transcribe(task, abandoned=abandoned)) as segments:  # type: ignore[type-var]
                    speculation.results[task.task] = tuple(segments)
            except Exception:  # noqa: BLE001 - the commit decodes again, and reports what fails
                logger.debug("speculative decode of %s stopped", task.item_id, exc_info=True)
                return

    def _tasks(self, utterance: Utterance) -> list[Utterance]:
        """The decodes an utterance's answer needs (a translation session needs two)."""
        return [utterance]

    def _segments(self, utterance: Utterance) -> Iterator[Segment]:
        """The utterance's segments: the speculative ones when they are there, else decoded now."""
        with self._lock:
            speculation = self._speculations.get(utterance.item_id)
        if speculation is not None and utterance.task in speculation.results:
            metrics.SPECULATIONS.labels(outcome="used").inc()
            yield from speculation.results[utterance.task]
            return
        with closing(self._transcribe(utterance)) as segments:  # type: ignore[type-var]
            yield from segments

    def _forget(self, item_id: str) -> None:
        with self._lock:
            self._speculations.pop(item_id, None)

    def _answer_safely(self, utterance: Utterance) -> None:
        # A client that left still gets each utterance through the pipeline: its first check
        # stops it before any decoding, and the request log shows the 499.
        try:
            self._answer(utterance)
        except Exception:  # noqa: BLE001 - one utterance's failure must not end the session
            logger.exception("realtime item %s failed", utterance.item_id)
            self._failed(utterance, ApiError("The server had an error transcribing this audio."))
        finally:
            self._forget(utterance.item_id)

    def _answer(self, utterance: Utterance) -> None:
        texts: list[str] = []
        scores: list[dict[str, Any]] | None = [] if utterance.logprobs else None
        try:
            with closing(self._segments(utterance)) as segments:  # type: ignore[type-var]
                for segment in segments:
                    text = segment.text if texts else segment.text.lstrip()
                    if not text:
                        continue
                    if not texts:
                        metrics.FIRST_DELTA_SECONDS.observe(time.perf_counter() - utterance.committed_at)
                    texts.append(text)
                    delta_scores = None if scores is None else render_logprobs([segment])
                    if scores is not None and delta_scores is not None:
                        scores += delta_scores
                    self._channel.send(
                        {
                            "type": "conversation.item.input_audio_transcription.delta",
                            "item_id": utterance.item_id,
                            "content_index": 0,
                            "delta": text,
                            "logprobs": delta_scores,
                        }
                    )
        except ClientDisconnectedError:
            return
        except ApiError as exc:
            self._failed(utterance, exc)
            return
        transcript = "".join(texts).strip()
        self._channel.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": utterance.item_id,
                "content_index": 0,
                "transcript": transcript,
                "logprobs": scores,
                "usage": {"type": "duration", "seconds": round(utterance.audio.duration, 3)},
            }
        )
        metrics.COMPLETION_SECONDS.observe(time.perf_counter() - utterance.committed_at)
        if self._generation == "ga":
            self._channel.send(
                {
                    "type": "conversation.item.done",
                    "previous_item_id": None,
                    "item": user_item(utterance.item_id, transcript, done=True),
                }
            )

    def _failed(self, utterance: Utterance, exc: ApiError) -> None:
        self._channel.send(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": utterance.item_id,
                "content_index": 0,
                "error": {
                    "type": "transcription_error" if exc.status >= 500 else exc.type,
                    "code": exc.code,
                    "message": exc.message,
                    "param": exc.param,
                },
            }
        )
