"""`response_format=diarized_json`: known speakers from data URLs, and the engine's diarizer.

The one seam between the transcription view and `engine/diarize.py`: the view calls
`diarized_transcription` instead of `transcriber.transcribe` when the client asked for speakers.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from typing import Any

from whisper_api.config import Settings
from whisper_api.engine import speaker_encoder
from whisper_api.engine.audio import decode_audio
from whisper_api.engine.channels import decode_channels
from whisper_api.engine.diarize import (
    DiarizationSettings,
    KnownSpeaker,
    distinct_channels,
    transcribe_diarized,
)
from whisper_api.engine.types import Audio, Segment, Transcriber, TranscriptionInfo, TranscriptionOptions
from whisper_api.errors import ApiError, AudioDecodeError, InvalidRequestError
from whisper_api.web.pipeline import EngineCall

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?:;[\w-]+=[\w.-]+)*;base64,(?P<data>.*)$", re.DOTALL
)


def wants_diarization(params: dict[str, Any]) -> bool:
    return params["response_format"] == "diarized_json"


def known_speakers(params: dict[str, Any], settings: Settings) -> list[KnownSpeaker]:
    """Decode `known_speaker_references[]` (data URLs) paired with `known_speaker_names[]`."""
    speakers = []
    for index, (name, url) in enumerate(
        zip(params["known_speaker_names"], params["known_speaker_references"], strict=True)
    ):
        param = f"known_speaker_references[{index}]"
        match = _DATA_URL.match(url.strip())
        if match is None:
            raise InvalidRequestError(
                "Each known speaker reference must be a data URL such as 'data:audio/wav;base64,...'.",
                param=param,
            )
        try:
            clip = base64.b64decode(match["data"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequestError(
                "The known speaker reference is not valid base64.", param=param
            ) from None
        try:
            audio = decode_audio(
                clip, max_seconds=settings.known_speaker_max_seconds, timeout=settings.decode_timeout
            )
        except AudioDecodeError as exc:
            raise InvalidRequestError(f"Known speaker reference: {exc.message}", param=param) from None
        except ApiError as exc:
            exc.param = param
            raise
        speakers.append(KnownSpeaker(name=name, audio=audio))
    return speakers


def split_channels(data: bytes, settings: Settings) -> list[Audio]:
    return decode_channels(
        data,
        max_channels=settings.diarization_max_channels,
        max_seconds=settings.diarization_max_channel_seconds,
    )


def diarizing_call(channels: list[Audio], known: list[KnownSpeaker], settings: Settings) -> EngineCall:
    """The engine call that transcribes with speaker labels (for `Job.transcribe(run=...)`).

    A 400 saying how to install the speaker model when the request needs it and it is missing.
    """
    needs_encoder = bool(known) or not distinct_channels(channels)
    if needs_encoder and not speaker_encoder.available():
        what = "Known speakers need" if known else "Diarizing single-channel audio needs"
        raise InvalidRequestError(
            f"{what} the optional speaker model, which this server does not have: "
            f"{speaker_encoder.INSTALL_HINT}. Multi-channel recordings (one speaker per channel) "
            "work without it.",
            param="response_format",
            code="diarization_unavailable",
        )
    config = DiarizationSettings(
        threshold=settings.diarization_threshold, max_speakers=settings.diarization_max_speakers
    )
    encoder = speaker_encoder.get_encoder if speaker_encoder.available() else None

    def run(
        transcriber: Transcriber, audio: Audio, options: TranscriptionOptions, check: Callable[[], None]
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        return transcribe_diarized(transcriber, audio, channels, options, known, encoder, config, check=check)

    return run
