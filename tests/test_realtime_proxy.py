"""Realtime through the shipped nginx configuration: WebSocket upgrades at the root and under the
/whisper/ prefix, and the official Node SDK (which only speaks wss://) through TLS with a throwaway
certificate."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.support.live import pcm16, send_paced, silence
from tests.support.nginx import Nginx, require_tool
from tests.support.server import ROOT, ServerProcess
from tests.text import JFK_REFERENCE, word_errors

NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = require_tool("openssl")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, certificate: tuple[Path, Path]) -> Iterator[Nginx]:
    log = tmp_path_factory.mktemp("proxied") / "server.log"
    server = ServerProcess({"WHISPER_MODEL": "tiny.en", "WHISPER_API_TRUSTED_PROXIES": "1"}, log).start()
    try:
        nginx = Nginx([f"127.0.0.1:{server.port}"], tmp_path_factory.mktemp("nginx"), tls=certificate).start()
        try:
            yield nginx
        finally:
            nginx.stop()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def jfk_pcm(jfk_bytes: bytes) -> bytes:
    return pcm16(jfk_bytes)


def test_python_sdk_upgrades_through_nginx_at_the_root(proxy: Nginx, jfk_pcm: bytes) -> None:
    client = openai.AsyncOpenAI(base_url=proxy.base_url + "/v1", api_key="sk-local", max_retries=0)

    async def run() -> str:
        async with client.realtime.connect(extra_query={"intent": "transcription"}) as conn:
            await conn.session.update(
                session={"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            )
            await send_paced(lambda a: conn.input_audio_buffer.append(audio=a), jfk_pcm, speed=4)
            await conn.input_audio_buffer.commit()
            async with asyncio.timeout(60):
                async for event in conn:
                    if event.type == "conversation.item.input_audio_transcription.completed":
                        return event.transcript
        raise AssertionError("no transcript")

    assert word_errors(JFK_REFERENCE, asyncio.run(run())) <= 1


def test_node_sdk_streams_over_wss_under_the_prefix(
    proxy: Nginx, certificate: tuple[Path, Path], jfk_pcm: bytes, tmp_path: Path
) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_DIR / "node_modules" / "ws").is_dir():
        pytest.skip("node or tests/node/node_modules missing (scripts/test runs npm ci when npm exists)")
    pcm = tmp_path / "speech.pcm"
    pcm.write_bytes(jfk_pcm + silence(1.6))
    base_url = f"https://127.0.0.1:{proxy.tls_port}/whisper/v1"
    result = subprocess.run(
        [node, "realtime.mjs", base_url, str(pcm), "1"],
        cwd=NODE_DIR,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(certificate[0])},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr + proxy.error_log()
    out = json.loads(result.stdout)
    assert word_errors(JFK_REFERENCE, out["transcripts"][0]) <= 1
    types = out["types"]
    assert types[:2] == ["session.created", "session.updated"]
    assert types.index("input_audio_buffer.speech_started") < types.index("input_audio_buffer.committed")
