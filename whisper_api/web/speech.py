"""`POST /v1/audio/speech` (text to speech) and `GET /v1/audio/voices`.

The request takes the pipeline's road (web/pipeline.py): admission before its body is read, the
checks that need no synthesis (model, voice, the text's script), a running place and a deadline
scaled to the audio it will make. The voice is loaded (once per worker) before the status line,
so a broken voice is a JSON error; then the audio is streamed as each sentence is synthesised and
encoded (`stream_format=audio`, the default), or as `speech.audio.delta` events
(`stream_format=sse`). The stream owns the slot and frees it when it ends.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from whisper_api.engine.encode import encode_all
from whisper_api.engine.speech import SpeechChunk, SpeechOptions, Voice
from whisper_api.engine.tokens import audio_tokens
from whisper_api.errors import ClientDisconnectedError, InvalidRequestError
from whisper_api.web import metrics
from whisper_api.web.apidoc import JSON, SSE, documented
from whisper_api.web.body import load_json_body
from whisper_api.web.responses import close_iterator, error_event, json_response, sse, sse_response
from whisper_api.web.speech_schemas import SpeechEventSchema, SpeechSchema, VoiceListSchema
from whisper_api.web.state import AppState, get_state
from whisper_api.web.voices import (
    OPENAI_VOICES,
    SPEECH_MODEL_ALIASES,
    check_speakable,
    resolve_voice,
    voice_map,
)

logger = logging.getLogger(__name__)

bp = Blueprint("speech", __name__, url_prefix="/v1/audio")

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
_VOICE_LIST = VoiceListSchema()
#: Speech runs at about 15 characters a second; used to size the deadline before synthesis.
CHARS_PER_AUDIO_SECOND = 15.0


@bp.post("/speech")
@documented(
    "Speak text (audio streamed sentence by sentence, or speech.audio server-sent events)",
    body=SpeechSchema,
    responses={
        200: (
            "The audio in `response_format` (24 kHz mono); events when `stream_format=sse`",
            {**{mime: bytes for mime in CONTENT_TYPES.values()}, SSE: SpeechEventSchema},
        )
    },
    errors=(400, 404, 413, 429, 503, 504),
)
def create_speech() -> Response:
    state = get_state()
    with state.pipeline.admit(request.environ) as job:  # 429 before the body is read
        body = load_json_body(request)
        if not isinstance(body, dict):
            raise InvalidRequestError(
                "We could not parse the JSON body of your request. The body must be a JSON object "
                "(Content-Type: application/json)."
            )
        params: dict[str, Any] = SpeechSchema().load(body)
        catalog = state.voices
        choice = resolve_voice(params["model"], params["voice"], catalog, state.settings)
        choice = check_speakable(params["input"], choice, catalog)
        job.start_speaking(len(params["input"]) / CHARS_PER_AUDIO_SECOND / params["speed"])
        voice = catalog.get(choice.location.name)
        chunks = job.stream(job.guard(spoken_chunks(voice, params["input"], SpeechOptions(params["speed"]))))
        # From here the response owns the slot: closing `chunks` stops synthesis and frees it.
        if params["stream_format"] == "sse":
            return sse_response(_events(voice, params, chunks, state), on_close=chunks.close)
        audio = encode_all((c.samples for c in chunks), params["response_format"], voice.sample_rate)
        return _audio_response(audio, params["response_format"], on_close=chunks.close)


@bp.get("/voices")
@documented("The installed text-to-speech voices", responses={200: ("Voices", {JSON: VoiceListSchema})})
def list_voices() -> Response:
    """Installed voices and the OpenAI names that speak with them."""
    state = get_state()
    return json_response(_VOICE_LIST.dump({"object": "list", "data": voice_objects(state)}))


def voice_objects(state: AppState) -> list[dict[str, Any]]:
    """One object per installed voice: language, origin, licence and the OpenAI names mapped to it."""
    settings = state.settings
    locations = state.voices.locations()
    default = settings.default_voice or (locations[0].name if locations else "")
    mapping = voice_map(settings)
    return [
        {
            "id": v.name,
            "object": "voice",
            "language": v.language,
            "sample_rate": v.sample_rate,
            "source": v.source,
            "licence": v.licence,
            "openai_voices": [n for n in OPENAI_VOICES if mapping.get(n, default) == v.name],
            "models": list(SPEECH_MODEL_ALIASES),
        }
        for v in locations
    ]


def spoken_chunks(voice: Voice, text: str, options: SpeechOptions) -> Iterator[SpeechChunk]:
    """The voice's pieces of `text`, each counted in /metrics as it is produced."""
    for chunk in voice.synthesize(text, options):
        metrics.observe_speech(voice.name, chunk.characters, chunk.duration, chunk.seconds_spent)
        yield chunk


def _audio_response(audio: Iterator[bytes], fmt: str, *, on_close: Callable[[], None]) -> Response:
    def body() -> Iterator[bytes]:
        try:
            yield from audio
        except ClientDisconnectedError:
            logger.info("client closed the speech stream; synthesis stopped")
        except Exception:  # noqa: BLE001 - bytes are sent: the client sees a short file
            logger.exception("speech synthesis failed mid-stream")
        finally:
            close_iterator(audio)

    response = Response(stream_with_context(body()), status=200, content_type=CONTENT_TYPES[fmt])
    response.call_on_close(on_close)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def _events(
    voice: Voice, params: dict[str, Any], chunks: Iterable[SpeechChunk], state: AppState
) -> Iterator[str]:
    """`speech.audio.delta` per encoded piece (base64), then `speech.audio.done` with usage.

    No `[DONE]` line follows: OpenAI's speech events end with `speech.audio.done`.
    """
    seconds = 0.0

    def counted() -> Iterator[Any]:
        nonlocal seconds
        for chunk in chunks:
            seconds += chunk.duration
            yield chunk.samples

    audio = encode_all(counted(), params["response_format"], voice.sample_rate)
    try:
        for data in base64_pieces(audio):
            yield sse({"type": "speech.audio.delta", "audio": data})
        usage = speech_usage(params["input"], seconds, state)
        yield sse({"type": "speech.audio.done", "usage": usage})
    except ClientDisconnectedError:
        logger.info("client closed the speech event stream; synthesis stopped")
    except Exception as exc:  # noqa: BLE001 - the status line is sent: report it in the stream
        yield error_event(exc, "speech synthesis")
    finally:
        close_iterator(audio)


def base64_pieces(chunks: Iterator[bytes]) -> Iterator[str]:
    """Base64 of each chunk, carrying over bytes so every piece but the last is whole 3-byte groups.

    Clients that concatenate the pieces' text (node's chat stream helper) then get valid base64.
    """
    carry = b""
    for chunk in chunks:
        data = carry + chunk
        cut = len(data) - len(data) % 3
        carry = data[cut:]
        if cut:
            yield base64.b64encode(data[:cut]).decode("ascii")
    if carry:
        yield base64.b64encode(carry).decode("ascii")


def speech_usage(text: str, audio_seconds: float, state: AppState) -> dict[str, int]:
    """Input = the text's Whisper tokens (words when no tokenizer); output = 50 audio tokens a second."""
    registry = state.registry
    counter = registry.token_counter(registry.default_name)
    text_tokens = counter.count_text(text) if counter is not None else len(text.split())
    output = audio_tokens(audio_seconds) if audio_seconds > 0 else 0
    return {
        "input_tokens": text_tokens,
        "output_tokens": output,
        "total_tokens": text_tokens + output,
    }
