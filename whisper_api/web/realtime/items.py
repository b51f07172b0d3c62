"""A session's committed utterances, transcribed one after another on the session's own thread,
each answered with `delta` events, then `completed` (or `failed`)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Any

from whisper_api.engine.types import Segment
from whisper_api.errors import ApiError, ClientDisconnectedError
from whisper_api.web.realtime import metrics
from whisper_api.web.realtime.channel import Channel
from whisper_api.web.realtime.config import Generation
from whisper_api.web.realtime.transcribe import Utterance

logger = logging.getLogger(__name__)

Transcribe = Callable[[Utterance], Iterator[Segment]]
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
        self._queue: queue.Queue[Utterance | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="realtime-items", daemon=True)
        self._thread.start()

    def submit(self, utterance: Utterance) -> None:
        self._queue.put(utterance)

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
        while (utterance := self._queue.get()) is not _STOP:
            try:
                self._answer_safely(utterance)
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _answer_safely(self, utterance: Utterance) -> None:
        # A client that left still gets each utterance through the pipeline: its first check
        # stops it before any decoding, and the request log shows the 499.
        try:
            self._answer(utterance)
        except Exception:  # noqa: BLE001 - one utterance's failure must not end the session
            logger.exception("realtime item %s failed", utterance.item_id)
            self._failed(utterance, ApiError("The server had an error transcribing this audio."))

    def _answer(self, utterance: Utterance) -> None:
        texts: list[str] = []
        try:
            with closing(self._transcribe(utterance)) as segments:  # type: ignore[type-var]
                for segment in segments:
                    text = segment.text if texts else segment.text.lstrip()
                    if not text:
                        continue
                    if not texts:
                        metrics.FIRST_DELTA_SECONDS.observe(time.perf_counter() - utterance.committed_at)
                    texts.append(text)
                    self._channel.send(
                        {
                            "type": "conversation.item.input_audio_transcription.delta",
                            "item_id": utterance.item_id,
                            "content_index": 0,
                            "delta": text,
                            "logprobs": None,
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
                "logprobs": None,
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
