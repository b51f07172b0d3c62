"""The official openai npm package streams from the real server (needs node and `npm ci` in tests/node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.server import ROOT
from tests.text import JFK_REFERENCE, word_errors

NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("node or tests/node/node_modules missing (scripts/test runs npm ci when npm exists)")
    return node


def test_node_sdk_streams_transcription_events_and_a_chat_completion(
    node: str, server_url: str, audio_dir: Path, jfk_wav: bytes, tmp_path: Path
) -> None:
    wav = tmp_path / "jfk.wav"
    wav.write_bytes(jfk_wav)
    result = subprocess.run(
        [node, "stream.mjs", server_url + "/v1", str(audio_dir / "jfk.flac"), str(wav)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    types = out["transcription"]["types"]
    assert types[-1] == "transcript.text.done" and types.count("transcript.text.done") == 1
    assert set(types[:-1]) == {"transcript.text.delta"} and len(types) >= 2
    assert word_errors(JFK_REFERENCE, out["transcription"]["text"]) <= 3
    assert out["chat"]["finish_reason"] == "stop"
    assert word_errors(JFK_REFERENCE, out["chat"]["content"]) <= 3
    assert out["chat"]["usage"]["prompt_tokens_details"]["audio_tokens"] == 550


def test_node_sdk_speaks_every_format_streams_and_gets_a_spoken_chat_answer(
    node: str, server_url: str, jfk_wav: bytes, tmp_path: Path
) -> None:
    pytest.importorskip("piper", reason="text to speech needs requirements-speech.txt")
    import base64

    from tests.test_speech import CONTENT_TYPES, EXPECTED_RATE, decoded

    wav = tmp_path / "jfk.wav"
    wav.write_bytes(jfk_wav)
    result = subprocess.run(
        [node, "speech.mjs", server_url + "/v1", str(tmp_path), str(wav)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    pcm_seconds = (tmp_path / "speech.pcm").stat().st_size / 2 / 24000
    assert 2 < pcm_seconds < 8
    for fmt, rate in EXPECTED_RATE.items():
        assert out["formats"][fmt] == CONTENT_TYPES[fmt]
        got_rate, channels, seconds = decoded((tmp_path / f"speech.{fmt}").read_bytes())
        assert (got_rate, channels) == (rate, 1), fmt
        assert abs(seconds - pcm_seconds) < 0.15 * pcm_seconds, fmt  # Piper's durations vary a little
    assert out["bodyChunks"] > 1
    assert out["sse"]["types"][-1] == "speech.audio.done" and len(out["sse"]["types"]) >= 2
    assert len(base64.b64decode(out["sse"]["audio"])) / 2 / 24000 > 2
    assert out["sse"]["usage"]["output_tokens"] > 100
    assert out["bad"] == [
        {"status": 400, "param": "input"},
        {"status": 400, "param": "speed"},
        {"status": 400, "param": "voice"},
        {"status": 400, "param": "response_format"},
    ]
    assert out["chat"]["id"].startswith("audio_") and out["chat"]["content"] is None
    assert out["chat"]["finish_reason"] == "stop"
    assert word_errors(JFK_REFERENCE, out["chat"]["transcript"]) <= 3
    assert 4 < (tmp_path / "chat.pcm").stat().st_size / 2 / 24000 < 15
