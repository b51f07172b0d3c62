"""Realtime translation (`client.realtime.translations`) on the multilingual base model: German
speech streamed as it is spoken comes back as German input transcript and English output text."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from tests.support.live import pcm16, send_paced, silence

pytestmark = pytest.mark.multilingual
RATE = 24_000


def test_german_speech_is_translated_to_english(base_server_url: str, audio_dir: Path) -> None:
    speech = pcm16((audio_dir / "multilingual.mp3").read_bytes())
    german = speech[2 * RATE * 29 : 2 * RATE * 41]  # "Jeder, der diese Software ... die Genehmigung erteilt"
    client = openai.AsyncOpenAI(base_url=base_server_url + "/v1", api_key="sk-local", max_retries=0)

    async def run() -> list[Any]:
        events: list[Any] = []
        async with client.realtime.translations.connect(model="gpt-realtime-translate") as conn:
            await conn.session.update(
                session={
                    "audio": {
                        "input": {"transcription": {"model": "whisper-1"}},
                        "output": {"language": "en"},
                    }
                }
            )
            await send_paced(
                lambda a: conn.send({"type": "session.input_audio_buffer.append", "audio": a}),
                german + silence(1.5),
            )
            await conn.send({"type": "session.close"})
            async with asyncio.timeout(90):
                async for event in conn:
                    events.append(event)
                    if event.type == "session.closed":
                        break
        return events

    events = asyncio.run(run())
    kinds = [e.type for e in events]
    assert kinds[:2] == ["session.created", "session.updated"]
    assert events[0].session.type == "translation"
    assert kinds[-1] == "session.closed"
    assert "error" not in kinds
    source = "".join(e.delta for e in events if e.type == "session.input_transcript.delta").lower()
    english = "".join(e.delta for e in events if e.type == "session.output_transcript.delta").lower()
    assert "software" in source and ("der" in source.split() or "die" in source.split())
    assert "software" in english and "the" in english.split()
    assert not {"der", "die", "und"} & set(english.replace(",", " ").split())
    audio = [e for e in events if e.type == "session.output_audio.delta"]
    if importlib.util.find_spec("piper") is None:  # text to speech is optional (requirements-speech.txt)
        assert not audio and events[0].session.output_modalities == ["text"]
        return
    assert events[0].session.output_modalities == ["text", "audio"]
    assert audio and {(e.format, e.sample_rate, e.channels) for e in audio} == {("pcm16", 24_000, 1)}
    spoken = np.frombuffer(b"".join(base64.b64decode(e.delta) for e in audio), dtype="<i2")
    assert len(spoken) / 24_000 > 2.0  # English speech for the translated text
    assert np.abs(spoken).max() > 1000
