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
