"""Realtime sessions at their limits: refused at the handshake when the worker is full, told by an
`error` event and close code 3000 when the key is missing or wrong (as OpenAI does), closed with an
`error` event and a close code when idle, too long or holding too much audio, cleaned up when the
client vanishes, and finished (last transcript, then 1001) on SIGTERM."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import requests
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.live import pcm16, silence
from tests.support.server import ServerProcess, worker_pids
from tests.text import JFK_REFERENCE, word_errors

KEY = "sk-realtime-test-key-0123456789"
MANUAL = {
    "type": "session.update",
    "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}},
}


def _start(tmp_path_factory: pytest.TempPathFactory, name: str, env: dict[str, str]) -> ServerProcess:
    log = tmp_path_factory.mktemp(name) / "server.log"
    return ServerProcess({"WHISPER_MODEL": "tiny.en", **env}, log).start()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """4 threads (so 2 sessions per worker), short idle time and session length, a small buffer, a key."""
    env = {
        "WHISPER_API_THREADS": "4",
        "WHISPER_API_REALTIME_IDLE_TIMEOUT": "2",
        "WHISPER_API_REALTIME_MAX_SESSION_SECONDS": "5",
        "WHISPER_API_REALTIME_MAX_BUFFER_SECONDS": "2",
        "WHISPER_API_KEYS": KEY,
    }
    server = _start(tmp_path_factory, "limited", env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _places_back(request: pytest.FixtureRequest) -> None:
    """Each test on the limited server starts with both of its places free."""
    if "limited" in request.fixturenames:
        _wait_until_no_session_is_open(request.getfixturevalue("limited"))


def _ws_url(server: ServerProcess) -> str:
    return server.base_url.replace("http://", "ws://") + "/v1/realtime?intent=transcription"


def _open(server: ServerProcess, **kwargs: Any) -> Any:  # noqa: ANN401
    headers = kwargs.pop("headers", {"Authorization": f"Bearer {KEY}"})
    return connect(_ws_url(server), additional_headers=headers, **kwargs)


async def _until_closed(ws: ClientConnection, timeout: float = 20) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        try:
            async for message in ws:
                events.append(json.loads(message))
        except ConnectionClosed:
            pass
    return events


def _wait_until_no_session_is_open(server: ServerProcess, timeout: float = 15) -> None:
    """Closed by the client, a session still takes a moment to give its place back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        headers = {"Authorization": f"Bearer {KEY}"}
        text = requests.get(server.base_url + "/metrics", headers=headers, timeout=5).text
        if "whisper_api_realtime_sessions_open 0.0" in text:
            return
        time.sleep(0.1)
    raise AssertionError("Realtime sessions still open")


def _append(pcm: bytes) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})


def test_handshake_is_refused_with_429_when_the_worker_is_full(limited: ServerProcess) -> None:
    async def run() -> InvalidStatus:
        async with _open(limited), _open(limited):
            with pytest.raises(InvalidStatus) as refused:
                async with _open(limited):
                    pass
            return refused.value

    refused = asyncio.run(run())
    _wait_until_no_session_is_open(limited)  # the next tests need the places back
    assert refused.response.status_code == 429
    assert refused.response.headers["Retry-After"]
    assert json.loads(refused.response.body)["error"]["code"] == "too_many_sessions"


async def _refusal(server: ServerProcess, **kwargs: Any) -> tuple[list[dict[str, Any]], int | None]:  # noqa: ANN401
    """What a client with a bad key gets: the events before the close, and the close code."""
    async with _open(server, **kwargs) as ws:
        events = await _until_closed(ws)
        return events, ws.close_code


def test_missing_key_gets_an_error_event_and_close_3000(limited: ServerProcess) -> None:
    events, code = asyncio.run(_refusal(limited, headers={}))
    assert code == 3000
    (event,) = events  # no session.created: nothing was opened
    assert event["type"] == "error"
    assert event["error"]["type"] == "invalid_request_error"
    assert event["error"]["message"].startswith("You didn't provide an API key.")
    assert set(event["error"]) == {"message", "type", "param", "code", "event_id"}


def test_wrong_key_gets_invalid_api_key_and_close_3000_through_the_sdk(limited: ServerProcess) -> None:
    async def run() -> tuple[list[Any], int | None]:
        client = openai.AsyncOpenAI(base_url=limited.base_url + "/v1", api_key="sk-wrong-key-0123456789")
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            events = []
            with contextlib.suppress(ConnectionClosed):
                async for event in conn:
                    events.append(event)
            return events, conn._connection.close_code  # the SDK keeps the websockets connection

    events, code = asyncio.run(run())
    assert [e.type for e in events] == ["error"]
    assert events[0].error.code == "invalid_api_key"
    assert events[0].error.type == "invalid_request_error"
    assert "sk-***789" in events[0].error.message  # masked, as OpenAI shows it
    assert code == 3000


def test_plain_http_with_a_wrong_key_is_still_401(limited: ServerProcess) -> None:
    response = requests.post(
        limited.base_url + "/v1/realtime/client_secrets",
        headers={"Authorization": "Bearer sk-wrong-key-0123456789", "Upgrade": "websocket"},
        json={"session": {"type": "transcription"}},
        timeout=10,
    )
    assert response.status_code == 401  # only the WebSocket views answer over a socket
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_browser_sub_protocol_carries_the_key_and_realtime_is_selected(limited: ServerProcess) -> None:
    async def run() -> tuple[str | None, dict[str, Any]]:
        protocols = ["realtime", f"openai-insecure-api-key.{KEY}"]
        async with _open(limited, headers={}, subprotocols=protocols) as ws:  # type: ignore[arg-type]
            return ws.subprotocol, json.loads(await ws.recv())

    subprotocol, created = asyncio.run(run())
    assert subprotocol == "realtime"
    assert created["type"] == "session.created"


def test_idle_session_gets_an_error_event_and_a_close(limited: ServerProcess) -> None:
    async def run() -> tuple[list[dict[str, Any]], int | None]:
        async with _open(limited) as ws:
            events = await _until_closed(ws)
            return events, ws.close_code

    events, code = asyncio.run(run())
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "idle_timeout"
    assert code == 1000


def test_session_longer_than_its_maximum_is_closed(limited: ServerProcess) -> None:
    async def run() -> tuple[list[dict[str, Any]], int | None]:
        async with _open(limited) as ws:
            started = time.monotonic()
            while time.monotonic() - started < 10 and ws.close_code is None:
                try:
                    await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
                except ConnectionClosed:
                    break
                await asyncio.sleep(0.5)
            return await _until_closed(ws), ws.close_code

    events, code = asyncio.run(run())
    assert [e["error"]["code"] for e in events if e["type"] == "error"] == ["max_duration"]
    assert code == 1000


def test_uncommitted_audio_over_the_limit_closes_with_1008(limited: ServerProcess) -> None:
    async def run() -> tuple[list[dict[str, Any]], int | None]:
        async with _open(limited) as ws:
            await ws.send(json.dumps(MANUAL))
            for _ in range(6):
                await ws.send(_append(silence(0.5)))
            return await _until_closed(ws), ws.close_code

    events, code = asyncio.run(run())
    errors = [e["error"]["code"] for e in events if e["type"] == "error"]
    assert errors == ["input_audio_buffer_too_large"]
    assert code == 1008


# --- a client that vanishes, and a server that stops -----------------------------------------------


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _start(tmp_path_factory, "plain", {"WHISPER_API_THREADS": "8", "WHISPER_API_LOG_FORMAT": "json"})
    try:
        yield server
    finally:
        server.stop()


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def test_vanished_client_stops_decoding_and_frees_everything(plain: ServerProcess, jfk_bytes: bytes) -> None:
    assert plain.process is not None
    (worker,) = worker_pids(plain.process.pid)
    speech = pcm16(jfk_bytes) * 4  # 44 s: two of Whisper's 30 s windows

    async def commit_and_vanish() -> None:
        async with _open(plain, headers={}) as ws:
            await ws.send(json.dumps(MANUAL))
            for offset in range(0, len(speech), 480_000):
                await ws.send(_append(speech[offset : offset + 480_000]))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            await asyncio.sleep(0.3)  # the decoding has started
            ws.transport.abort()  # gone without a close frame

    def realtime_lines(count: int) -> list[dict[str, Any]]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lines = [json.loads(x) for x in plain.log().splitlines() if '"method":"WS"' in x]
            if len(lines) >= count:
                return lines
            time.sleep(0.2)
        raise AssertionError(plain.log())

    asyncio.run(commit_and_vanish())  # the first one also grows the worker's pools to their size
    first = realtime_lines(1)[0]
    assert first["status"] == 499  # stopped, not finished: nobody would read it
    assert first["audio_seconds"] == pytest.approx(44, abs=1)
    time.sleep(1)
    baseline = _threads(worker)
    asyncio.run(commit_and_vanish())
    assert realtime_lines(2)[1]["status"] == 499
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _threads(worker) > baseline:
        time.sleep(0.2)
    assert _threads(worker) <= baseline  # reader, session and transcription threads all ended
    ready = requests.get(plain.base_url + "/ready", timeout=5).json()
    assert ready["requests"]["admitted"] == 0


def test_sigterm_sends_the_last_transcript_then_closes_1001(
    tmp_path_factory: pytest.TempPathFactory, jfk_bytes: bytes
) -> None:
    server = _start(tmp_path_factory, "drain", {"WHISPER_API_THREADS": "4"})
    try:
        assert server.process is not None

        async def run() -> tuple[list[dict[str, Any]], int | None]:
            async with _open(server, headers={}) as ws:
                await ws.send(json.dumps(MANUAL))
                await ws.send(_append(pcm16(jfk_bytes)))
                await asyncio.sleep(0.5)
                os.killpg(server.process.pid, signal.SIGTERM)  # type: ignore[union-attr]
                return await _until_closed(ws, timeout=60), ws.close_code

        events, code = asyncio.run(run())
        completed = [
            e for e in events if e["type"] == "conversation.item.input_audio_transcription.completed"
        ]
        assert len(completed) == 1
        assert word_errors(JFK_REFERENCE, completed[0]["transcript"]) <= 1
        assert code == 1001
        server.process.wait(timeout=60)
    finally:
        server.stop()


# --- ephemeral client secrets ------------------------------------------------------------------------


def test_client_secret_opens_a_realtime_session_and_nothing_else(limited: ServerProcess) -> None:
    minted = requests.post(
        limited.base_url + "/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"expires_after": {"anchor": "created_at", "seconds": 60}, "session": {"type": "transcription"}},
        timeout=10,
    )
    assert minted.status_code == 200, minted.text
    secret = minted.json()["value"]
    assert secret.startswith("ek_") and KEY not in secret
    assert minted.json()["expires_at"] == pytest.approx(time.time() + 60, abs=5)
    assert minted.json()["session"]["type"] == "transcription"

    async def run() -> dict[str, Any]:
        protocols = ["realtime", f"openai-insecure-api-key.{secret}"]
        async with _open(limited, headers={}, subprotocols=protocols) as ws:  # type: ignore[arg-type]
            return json.loads(await ws.recv())

    assert asyncio.run(run())["type"] == "session.created"
    other = requests.get(
        limited.base_url + "/v1/models", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert other.status_code == 401  # single-purpose: only the Realtime WebSocket
    again = requests.post(
        limited.base_url + "/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=10,
    )
    assert again.status_code == 401  # a secret cannot mint secrets


def test_forged_or_expired_secret_is_refused(limited: ServerProcess) -> None:
    expired = f"ek_{int(time.time()) - 5}_0011223344556677_{'0' * 40}"
    for secret in (expired, "ek_not_a_secret"):
        events, code = asyncio.run(_refusal(limited, headers={"Authorization": f"Bearer {secret}"}))
        assert code == 3000
        assert [e["error"]["code"] for e in events] == ["invalid_api_key"]


def test_beta_transcription_session_returns_a_client_secret(limited: ServerProcess) -> None:
    minted = requests.post(
        limited.base_url + "/v1/realtime/transcription_sessions",
        headers={"Authorization": f"Bearer {KEY}", "OpenAI-Beta": "assistants=v2"},
        json={"input_audio_format": "g711_ulaw", "turn_detection": None},
        timeout=10,
    )
    assert minted.status_code == 200, minted.text
    body = minted.json()
    assert body["client_secret"]["value"].startswith("ek_")
    assert body["input_audio_format"] == "g711_ulaw" and body["turn_detection"] is None
    bad = requests.post(
        limited.base_url + "/v1/realtime/client_secrets",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"expires_after": {"seconds": 5}},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "expires_after.seconds"
