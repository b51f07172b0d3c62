"""Chat with an upstream LLM: a small local OpenAI-compatible server stands in for it."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import openai
import pytest

from tests.support.server import ServerProcess
from tests.text import JFK_REFERENCE, word_errors

UPSTREAM_MODEL = "local-llm"
UPSTREAM_KEY = "sk-upstream-secret"
UPSTREAM_USAGE = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
JFK_AUDIO_TOKENS = 550  # 11.0 s at 50 encoder positions per second


class FakeLLM(BaseHTTPRequestHandler):
    """Answers `/v1/chat/completions` with "I heard: <the last message's text parts>"."""

    protocol_version = "HTTP/1.1"
    received: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        content = body["messages"][-1]["content"]
        texts = [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
        if any("please fail" in t for t in texts):
            error = {"message": "context too long", "type": "invalid_request_error", "param": "messages",
                     "code": "context_length_exceeded"}  # fmt: skip
            return self._send(400, "application/json", json.dumps({"error": error}).encode())
        answer = "I heard: " + " | ".join(texts)
        if not body.get("stream"):
            completion = {
                "id": "chatcmpl-upstream", "object": "chat.completion", "created": 1, "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": UPSTREAM_USAGE,
            }  # fmt: skip
            return self._send(200, "application/json", json.dumps(completion).encode())
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with_usage = (body.get("stream_options") or {}).get("include_usage")
        half = len(answer) // 2
        deltas = [{"role": "assistant", "content": ""}, {"content": answer[:half]},
                  {"content": answer[half:]}]  # fmt: skip
        for delta, finish in [*((d, None) for d in deltas), ({}, "stop")]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1,
                     "model": body["model"], "choices": [choice]}  # fmt: skip
            if with_usage:
                chunk["usage"] = None
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        if with_usage:
            chunk = {"id": "chatcmpl-upstream", "object": "chat.completion.chunk", "created": 1,
                     "model": body["model"], "choices": [], "usage": UPSTREAM_USAGE}  # fmt: skip
            self._chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    FakeLLM.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", FakeLLM.received
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture(scope="module")
def client(upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[openai.OpenAI]:
    env = {
        "WHISPER_MODEL": "tiny.en",
        "CHAT_UPSTREAM_BASE_URL": upstream[0],
        "CHAT_UPSTREAM_MODEL": UPSTREAM_MODEL,
        "CHAT_UPSTREAM_API_KEY": UPSTREAM_KEY,
    }
    server = ServerProcess(env, tmp_path_factory.mktemp("upstream") / "server.log").start()
    try:
        yield openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-local", max_retries=0, timeout=120)
    finally:
        server.stop()


def _ask(jfk_wav: bytes, question: str = "What is in this recording?") -> list[dict[str, Any]]:
    audio = {"data": base64.b64encode(jfk_wav).decode(), "format": "wav"}
    return [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": [{"type": "text", "text": question},
                                     {"type": "input_audio", "input_audio": audio}]},
    ]  # fmt: skip


def test_upstream_receives_the_transcript_in_place_of_the_audio(client, upstream, jfk_wav: bytes) -> None:
    completion = client.chat.completions.create(model="gpt-4o-audio-preview", messages=_ask(jfk_wav))
    sent = upstream[1][-1]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent["body"]["model"] == UPSTREAM_MODEL
    assert sent["body"]["messages"][0] == {"role": "system", "content": "You are helpful."}
    question, transcript = sent["body"]["messages"][1]["content"]
    assert question == {"type": "text", "text": "What is in this recording?"}
    assert transcript["type"] == "text"
    assert word_errors(JFK_REFERENCE, transcript["text"]) <= 3
    assert "input_audio" not in json.dumps(sent["body"])
    answer = completion.choices[0].message.content
    assert answer == f"I heard: What is in this recording? | {transcript['text']}"


def test_upstream_usage_gains_the_audio_tokens_of_the_transcribed_audio(client, jfk_wav: bytes) -> None:
    usage = client.chat.completions.create(model=UPSTREAM_MODEL, messages=_ask(jfk_wav)).usage
    assert usage.prompt_tokens == UPSTREAM_USAGE["prompt_tokens"] + JFK_AUDIO_TOKENS
    assert usage.prompt_tokens_details.audio_tokens == JFK_AUDIO_TOKENS
    assert usage.completion_tokens == UPSTREAM_USAGE["completion_tokens"]
    assert usage.total_tokens == UPSTREAM_USAGE["total_tokens"] + JFK_AUDIO_TOKENS


def test_upstream_answer_streams_through_with_stop_and_usage(client, upstream, jfk_wav: bytes) -> None:
    chunks = list(
        client.chat.completions.create(
            model="whisper-1", messages=_ask(jfk_wav), stream=True, stream_options={"include_usage": True}
        )
    )
    sent = upstream[1][-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    transcript = sent["messages"][1]["content"][1]["text"]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == f"I heard: What is in this recording? | {transcript}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == UPSTREAM_USAGE["prompt_tokens"] + JFK_AUDIO_TOKENS


def test_voice_loop_audio_in_llm_answer_spoken_back(client, jfk_wav: bytes) -> None:
    message = (
        client.chat.completions.create(
            model="whisper-1",
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "mp3"},
            messages=_ask(jfk_wav),
        )
        .choices[0]
        .message
    )
    assert message.content is None
    assert message.audio.transcript.startswith("I heard: What is in this recording? | ")
    spoken = base64.b64decode(message.audio.data)
    assert spoken[:3] == b"ID3" or spoken[:2] == b"\xff\xf3"  # an mp3 stream
    heard = client.audio.transcriptions.create(model="whisper-1", file=("answer.mp3", spoken)).text
    assert word_errors(message.audio.transcript, heard) <= 4


def test_streamed_voice_loop_sends_the_answer_audio_before_finish_reason(client, jfk_wav: bytes) -> None:
    chunks = list(
        client.chat.completions.create(
            model="whisper-1",
            modalities=["text", "audio"],
            audio={"voice": "alloy", "format": "pcm16"},
            messages=_ask(jfk_wav),
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    with_choices = [c for c in chunks if c.choices]
    audio = [c.choices[0].delta.audio for c in with_choices if c.choices[0].delta.audio is not None]
    transcript = "".join(a.transcript or "" for a in audio)
    assert transcript.startswith("I heard: What is in this recording? | ")
    pcm = base64.b64decode("".join(a.data or "" for a in audio))
    assert len(pcm) / 2 / 24000 > 4  # the answer, spoken at 24 kHz 16-bit mono
    finish = [i for i, c in enumerate(with_choices) if c.choices[0].finish_reason == "stop"]
    last_audio = max(i for i, c in enumerate(with_choices) if c.choices[0].delta.audio is not None)
    assert finish and finish[0] > last_audio
    assert chunks[-1].usage.prompt_tokens == UPSTREAM_USAGE["prompt_tokens"] + JFK_AUDIO_TOKENS


def test_upstream_error_keeps_its_status_and_names_its_field(client, jfk_wav: bytes) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="whisper-1", messages=_ask(jfk_wav, "please fail"))
    assert caught.value.code == "context_length_exceeded"
    assert caught.value.param == "messages"
    assert "context too long" in caught.value.message
