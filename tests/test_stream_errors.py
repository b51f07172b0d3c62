"""Failures after a stream has started reach the client as an SSE error event (web layer, fake engine)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator

import openai
import pytest
from werkzeug.serving import make_server

from tests.support.fakes import FakeTranscriber
from whisper_api.config import Settings
from whisper_api.engine.types import Audio, ModelLocation, Segment, TranscriptionInfo, TranscriptionOptions
from whisper_api.errors import InternalError
from whisper_api.web import create_app


class FailingTranscriber(FakeTranscriber):
    """Decodes one segment, then the engine fails (as a lost GPU would)."""

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        info, segments = super().transcribe(audio, options)

        def fail_after_first() -> Iterator[Segment]:
            yield next(segments)
            raise InternalError("The GPU went away while decoding.")

        return info, fail_after_first()


@pytest.fixture
def failing_client() -> Iterator[openai.OpenAI]:
    def load(location: ModelLocation) -> FailingTranscriber:
        return FailingTranscriber(location.name, multilingual=not location.name.endswith(".en"))

    app = create_app(Settings(model="tiny.en"), loader=load)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield openai.OpenAI(base_url=f"http://127.0.0.1:{server.port}/v1", api_key="x", max_retries=0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_transcription_error_mid_stream_raises_in_the_sdk_after_the_first_delta(
    failing_client: openai.OpenAI, jfk_wav: bytes
) -> None:
    stream = failing_client.audio.transcriptions.create(
        model="whisper-1", file=("jfk.wav", jfk_wav), stream=True
    )
    received = []
    with pytest.raises(openai.APIError, match="The GPU went away while decoding."):
        for event in stream:
            received.append(event)
    assert [e.type for e in received] == ["transcript.text.delta"]


def test_chat_error_mid_stream_raises_in_the_sdk_after_the_first_chunks(
    failing_client: openai.OpenAI, jfk_wav: bytes
) -> None:
    audio = {"data": base64.b64encode(jfk_wav).decode(), "format": "wav"}
    stream = failing_client.chat.completions.create(
        model="whisper-1",
        messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": audio}]}],
        stream=True,
    )
    received = []
    with pytest.raises(openai.APIError, match="The GPU went away while decoding."):
        for chunk in stream:
            received.append(chunk)
    assert [c.choices[0].delta.content for c in received] == ["", "Grüße, erste Hälfte."]
