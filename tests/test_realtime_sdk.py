"""Live transcription over `/v1/realtime` with the official openai Python SDK (GA and beta), on the
real server (gunicorn, tiny.en), streaming real speech paced as it is spoken."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from typing import Any

import numpy as np
import openai
import pytest

from tests.support.live import pcm16, send_paced, silence
from tests.support.server import ServerProcess
from tests.text import JFK_REFERENCE, word_errors

JFK_OPENING = "And so, my fellow Americans, ask not"
COMPLETED = "conversation.item.input_audio_transcription.completed"


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """tiny.en with 8 threads: 4 Realtime sessions plus HTTP."""
    log = tmp_path_factory.mktemp("realtime") / "server.log"
    server = ServerProcess({"WHISPER_MODEL": "tiny.en", "WHISPER_API_THREADS": "8"}, log).start()
    try:
        yield server.base_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def jfk_pcm(jfk_bytes: bytes) -> bytes:
    return pcm16(jfk_bytes)


def _client(url: str) -> openai.AsyncOpenAI:
    """The beta interface always uses wss:// unless told the WebSocket base URL (as for plain HTTP)."""
    ws_url = url.replace("http://", "ws://", 1) + "/v1"
    return openai.AsyncOpenAI(
        base_url=url + "/v1", websocket_base_url=ws_url, api_key="sk-local", max_retries=0
    )


def _ga_session(turn_detection: dict[str, Any] | None, **transcription: Any) -> dict[str, Any]:
    return {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24_000},
                "transcription": {"model": "whisper-1", **transcription},
                "turn_detection": turn_detection,
            }
        },
    }


async def _events_until(conn: Any, done: int, kind: str = COMPLETED, timeout: float = 60) -> list[Any]:  # noqa: ANN401
    """Events received until `done` of `kind` have arrived."""
    events: list[Any] = []

    async def read() -> None:
        async for event in conn:
            events.append(event)
            if sum(e.type == kind for e in events) >= done:
                return

    await asyncio.wait_for(read(), timeout)
    return events


async def _vad_transcripts(url: str, pcm: bytes, utterances: int) -> list[Any]:
    async with _client(url).realtime.connect(extra_query={"intent": "transcription"}) as conn:
        await conn.session.update(session=_ga_session({"type": "server_vad", "silence_duration_ms": 1200}))
        sender = asyncio.create_task(send_paced(lambda a: conn.input_audio_buffer.append(audio=a), pcm))
        events = await _events_until(conn, utterances)
        await sender
        return events


def test_ga_server_vad_gives_one_item_per_utterance(live_url: str, jfk_pcm: bytes) -> None:
    opening = jfk_pcm[: 2 * 24_000 * 44 // 10]  # "And so, my fellow Americans, ask not"
    pcm = jfk_pcm + silence(1.6) + opening + silence(1.6)
    events = asyncio.run(_vad_transcripts(live_url, pcm, utterances=2))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert events[0].session.type == "transcription"
    assert events[1].session.audio.input.turn_detection.silence_duration_ms == 1200
    completed = [e for e in events if e.type == COMPLETED]
    assert word_errors(JFK_REFERENCE, completed[0].transcript) <= 1
    assert word_errors(JFK_OPENING, completed[1].transcript) <= 1
    assert completed[0].item_id != completed[1].item_id
    assert completed[0].usage.type == "duration" and completed[0].usage.seconds > 11
    for item in completed:  # each item: started, stopped, committed, added, deltas, completed, done
        mine = [
            e.type
            for e in events
            if getattr(e, "item_id", None) == item.item_id or _item_of(e) == item.item_id
        ]
        assert mine[:4] == [
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
        ]
        assert "conversation.item.input_audio_transcription.delta" in mine
        deltas = "".join(e.delta for e in events if e.type.endswith(".delta") and e.item_id == item.item_id)
        assert deltas.strip() == item.transcript
    stops = [e for e in events if e.type == "input_audio_buffer.speech_stopped"]
    assert stops[0].audio_end_ms == pytest.approx(11_000, abs=600)


def _item_of(event: Any) -> str | None:  # noqa: ANN401
    item = getattr(event, "item", None)
    return getattr(item, "id", None)


def test_beta_manual_commit_transcribes_the_buffer(live_url: str, jfk_pcm: bytes) -> None:
    async def run() -> list[Any]:
        client = _client(live_url)
        async with client.beta.realtime.connect(
            model="whisper-1", extra_query={"intent": "transcription"}
        ) as conn:
            await conn.transcription_session.update(
                session={
                    "input_audio_format": "pcm16",
                    "turn_detection": None,
                    "input_audio_transcription": {"model": "whisper-1", "language": "en"},
                }
            )
            await send_paced(lambda a: conn.input_audio_buffer.append(audio=a), jfk_pcm)
            await conn.input_audio_buffer.commit()
            return await _events_until(conn, 1)

    events = asyncio.run(run())
    kinds = [e.type for e in events]
    assert kinds[:2] == ["transcription_session.created", "transcription_session.updated"]
    assert events[1].session.turn_detection is None
    assert "input_audio_buffer.speech_started" not in kinds
    assert (
        kinds.index("input_audio_buffer.committed")
        < kinds.index("conversation.item.created")
        < kinds.index(COMPLETED)
    )
    assert word_errors(JFK_REFERENCE, events[-1].transcript) <= 1


def test_four_concurrent_sessions_on_one_worker(live_url: str, jfk_pcm: bytes) -> None:
    async def all_four() -> list[list[Any]]:
        pcm = jfk_pcm + silence(1.6)
        return await asyncio.gather(*(_vad_transcripts(live_url, pcm, utterances=1) for _ in range(4)))

    for events in asyncio.run(all_four()):
        transcript = next(e.transcript for e in events if e.type == COMPLETED)
        assert word_errors(JFK_REFERENCE, transcript) <= 1


# --- client mistakes: an `error` event, and the session goes on --------------------------------------

MISTAKES: dict[str, tuple[Any, str, str | None]] = {
    "bad_json": ("{not json", "invalid_json", None),
    "unknown_event": ({"type": "response.create", "event_id": "evt_mine"}, "invalid_value", "type"),
    "bad_base64": (
        {"type": "input_audio_buffer.append", "audio": "***not base64***"},
        "invalid_value",
        "audio",
    ),
    "unknown_model": (
        {"type": "session.update", "session": _ga_session(None, model="no-such-model")},
        "model_not_found",
        "model",
    ),
    "unsupported_format": (
        {
            "type": "session.update",
            "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/opus"}}}},
        },
        "invalid_value",
        "session.audio.input.format.type",
    ),
    "empty_commit": ({"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty", None),
}


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_client_mistake_gets_an_error_event_and_the_session_goes_on(live_url: str, mistake: str) -> None:
    event, code, param = MISTAKES[mistake]

    async def run() -> list[Any]:
        async with _client(live_url).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.send_raw(event if isinstance(event, str) else _json(event))
            await conn.input_audio_buffer.append(audio=base64.b64encode(silence(0.2)).decode())
            await conn.input_audio_buffer.clear()
            return await _events_until(conn, 1, kind="input_audio_buffer.cleared", timeout=20)

    events = asyncio.run(run())
    errors = [e for e in events if e.type == "error"]
    assert len(errors) == 1, events
    assert errors[0].error.code == code
    assert errors[0].error.param == param
    assert errors[0].error.type == ("invalid_request_error")
    assert errors[0].error.message
    if isinstance(event, dict) and "event_id" in event:
        assert errors[0].error.event_id == event["event_id"]
    assert events[-1].type == "input_audio_buffer.cleared"  # still alive


def _json(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event)


def test_plain_http_get_gets_an_openai_error(live_url: str) -> None:
    import requests

    response = requests.get(live_url + "/v1/realtime?intent=transcription", timeout=10)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_realtime_metrics_are_exported(live_url: str) -> None:
    import requests

    text = requests.get(live_url + "/metrics", timeout=10).text
    for name in (
        "whisper_api_realtime_sessions_open",
        "whisper_api_realtime_audio_seconds_total",
        "whisper_api_realtime_completion_seconds_bucket",
    ):
        assert name in text


def test_g711_mulaw_session_is_transcribed(live_url: str, jfk_bytes: bytes) -> None:
    from whisper_api.engine.pcm import _mulaw_table

    linear = np.frombuffer(pcm16(jfk_bytes, rate=8_000), dtype="<i2").astype(np.int32)
    table = _mulaw_table().astype(np.int32)
    mulaw = np.abs(table[None, :] - linear[:, None]).argmin(axis=1).astype(np.uint8).tobytes()

    async def run() -> list[Any]:
        async with _client(live_url).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            session = _ga_session(None)
            session["audio"]["input"]["format"] = {"type": "audio/pcmu"}
            await conn.session.update(session=session)
            for offset in range(0, len(mulaw), 8_000):  # 1 s pieces, unpaced
                await conn.input_audio_buffer.append(
                    audio=base64.b64encode(mulaw[offset : offset + 8_000]).decode()
                )
            await conn.input_audio_buffer.commit()
            return await _events_until(conn, 1)

    events = asyncio.run(run())
    assert events[1].session.audio.input.format.type == "audio/pcmu"
    assert word_errors(JFK_REFERENCE, events[-1].transcript) <= 2


def test_logprobs_come_with_each_delta_and_the_completed_transcript(live_url: str, jfk_pcm: bytes) -> None:
    async def run() -> list[Any]:
        async with _client(live_url).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            session = _ga_session({"type": "server_vad"})  # OpenAI's defaults: 500 ms of silence
            await conn.session.update(
                session={**session, "include": ["item.input_audio_transcription.logprobs"]}
            )
            pcm = jfk_pcm[: 2 * 24_000 * 44 // 10] + silence(1.2)  # "And so, my fellow Americans, ask not"
            await send_paced(lambda a: conn.input_audio_buffer.append(audio=a), pcm)
            return await _events_until(conn, 2)  # the speaker's pause cuts it in two

    events = asyncio.run(run())
    assert events[1].session.include == ["item.input_audio_transcription.logprobs"]
    deltas = [e for e in events if e.type == "conversation.item.input_audio_transcription.delta"]
    completed = [e for e in events if e.type == COMPLETED]
    assert deltas and all(d.logprobs for d in deltas)
    for delta in deltas:  # the SDK's LogProbProperties: each token's text, bytes and log-probability
        assert "".join(p.token for p in delta.logprobs).strip() == delta.delta.strip()
        assert all(p.bytes == list(p.token.encode()) and p.logprob <= 0 for p in delta.logprobs)
    for item in completed:
        mine = [d for d in deltas if d.item_id == item.item_id]
        assert item.logprobs == [p for d in mine for p in d.logprobs]
        assert "".join(p.token for p in item.logprobs).strip() == item.transcript
    assert word_errors(JFK_OPENING, " ".join(c.transcript for c in completed)) <= 1


def test_without_include_there_are_no_logprobs(live_url: str, jfk_pcm: bytes) -> None:
    async def run() -> list[Any]:
        async with _client(live_url).realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.session.update(session=_ga_session(None))
            await send_paced(
                lambda a: conn.input_audio_buffer.append(audio=a), jfk_pcm[: 2 * 24_000 * 2], speed=4
            )
            await conn.input_audio_buffer.commit()
            return await _events_until(conn, 1)

    events = asyncio.run(run())
    assert all(
        e.logprobs is None for e in events if e.type.startswith("conversation.item.input_audio_transcription")
    )
