"""A Realtime transcription session's settings: read from `session.update` (GA) or
`transcription_session.update` (beta), and rendered back in each generation's shape."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from whisper_api.engine.pcm import InputFormat
from whisper_api.engine.turns import TurnDetection
from whisper_api.errors import InvalidRequestError

Generation = Literal["ga", "beta"]
LOGPROBS = "item.input_audio_transcription.logprobs"
#: OpenAI's names for the input formats, GA (`audio/pcm`...) and beta (`pcm16`...).
_GA_FORMATS = {"audio/pcm": "pcm16", "audio/pcmu": "pcmu", "audio/pcma": "pcma"}
_BETA_FORMATS = {"pcm16": "pcm16", "g711_ulaw": "pcmu", "g711_alaw": "pcma"}
_PCM_RATES = (8_000, 16_000, 24_000, 48_000)


@dataclass(frozen=True)
class SessionConfig:
    """What a session does with its audio; updates replace only the fields they name."""

    model: str
    language: str | None = None
    prompt: str = ""
    input_format: InputFormat = InputFormat()
    turn_detection: TurnDetection | None = TurnDetection()
    noise_reduction: dict[str, Any] | None = None  # accepted and echoed; Whisper needs none
    include: tuple[str, ...] = ()


def apply_update(config: SessionConfig, event: dict[str, Any]) -> SessionConfig:
    """`config` changed by a `session.update` or `transcription_session.update` event."""
    session = event.get("session")
    if not isinstance(session, dict):
        raise InvalidRequestError("Missing required parameter: 'session'.", param="session")
    if event["type"] == "session.update":
        return _apply_ga(config, session)
    return _apply_beta(config, session)


def _apply_ga(config: SessionConfig, session: dict[str, Any]) -> SessionConfig:
    kind = session.get("type", "transcription")
    if kind != "transcription":
        raise InvalidRequestError(
            f"Invalid session type '{kind}': this server serves transcription sessions only.",
            param="session.type",
        )
    changes: dict[str, Any] = {}
    audio_input = _object(session.get("audio", {}), "session.audio").get("input", {})
    audio_input = _object(audio_input, "session.audio.input")
    if "format" in audio_input:
        changes["input_format"] = _ga_format(audio_input["format"])
    if "transcription" in audio_input:
        changes.update(_transcription(audio_input["transcription"], "session.audio.input.transcription"))
    if "turn_detection" in audio_input:
        changes["turn_detection"] = _turn_detection(
            audio_input["turn_detection"], "session.audio.input.turn_detection"
        )
    if "noise_reduction" in audio_input:
        changes["noise_reduction"] = audio_input["noise_reduction"]
    if "include" in session:
        changes["include"] = _include(session["include"])
    return dataclasses.replace(config, **changes)


def _apply_beta(config: SessionConfig, session: dict[str, Any]) -> SessionConfig:
    changes: dict[str, Any] = {}
    if "input_audio_format" in session:
        name = session["input_audio_format"]
        if name not in _BETA_FORMATS:
            raise InvalidRequestError(
                f"Invalid value: '{name}'. Supported values are: 'pcm16', 'g711_ulaw', and 'g711_alaw'.",
                param="session.input_audio_format",
                code="invalid_value",
            )
        encoding = _BETA_FORMATS[name]
        changes["input_format"] = InputFormat(encoding, 24_000 if encoding == "pcm16" else 8_000)
    if "input_audio_transcription" in session:
        changes.update(
            _transcription(session["input_audio_transcription"], "session.input_audio_transcription")
        )
    if "turn_detection" in session:
        changes["turn_detection"] = _turn_detection(session["turn_detection"], "session.turn_detection")
    if "input_audio_noise_reduction" in session:
        changes["noise_reduction"] = session["input_audio_noise_reduction"]
    if "include" in session:
        changes["include"] = _include(session["include"])
    return dataclasses.replace(config, **changes)


def _object(value: Any, param: str) -> dict[str, Any]:  # noqa: ANN401 - raw JSON
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(f"Invalid type for '{param}': expected an object.", param=param)
    return value


def _ga_format(value: Any) -> InputFormat:  # noqa: ANN401
    fmt = _object(value, "session.audio.input.format")
    kind = fmt.get("type", "audio/pcm")
    if kind not in _GA_FORMATS:
        raise InvalidRequestError(
            f"Invalid value: '{kind}'. Supported values are: 'audio/pcm', 'audio/pcmu', and 'audio/pcma'.",
            param="session.audio.input.format.type",
            code="invalid_value",
        )
    encoding = _GA_FORMATS[kind]
    if encoding != "pcm16":
        return InputFormat(encoding, 8_000)
    rate = fmt.get("rate", 24_000)
    if rate not in _PCM_RATES:
        raise InvalidRequestError(
            f"Invalid value: {rate!r}. Supported rates are: {', '.join(map(str, _PCM_RATES))}.",
            param="session.audio.input.format.rate",
            code="invalid_value",
        )
    return InputFormat("pcm16", int(rate))


def _transcription(value: Any, param: str) -> dict[str, Any]:  # noqa: ANN401
    if value is None:
        return {}
    fields = _object(value, param)
    changes: dict[str, Any] = {}
    if fields.get("model") is not None:
        if not isinstance(fields["model"], str) or not fields["model"].strip():
            raise InvalidRequestError("Invalid model.", param=f"{param}.model", code="invalid_value")
        changes["model"] = fields["model"].strip()
    if "language" in fields:
        language = fields["language"]
        if language is not None and not isinstance(language, str):
            raise InvalidRequestError("Invalid language.", param=f"{param}.language", code="invalid_value")
        changes["language"] = language or None
    if "prompt" in fields:
        changes["prompt"] = str(fields["prompt"] or "")
    return changes


def _turn_detection(value: Any, param: str) -> TurnDetection | None:  # noqa: ANN401
    if value is None:
        return None
    fields = _object(value, param)
    kind = fields.get("type", "server_vad")
    if kind != "server_vad":
        raise InvalidRequestError(
            f"Invalid value: '{kind}'. Transcription sessions support 'server_vad' or null.",
            param=f"{param}.type",
            code="invalid_value",
        )
    base = TurnDetection()
    threshold = fields.get("threshold", base.threshold)
    padding = fields.get("prefix_padding_ms", base.prefix_padding_ms)
    silence = fields.get("silence_duration_ms", base.silence_duration_ms)
    if not isinstance(threshold, int | float) or not 0.0 <= threshold <= 1.0:
        raise InvalidRequestError(
            "threshold must be a number between 0 and 1.", param=f"{param}.threshold", code="invalid_value"
        )
    for name, number in (("prefix_padding_ms", padding), ("silence_duration_ms", silence)):
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number <= 10_000:
            raise InvalidRequestError(
                f"{name} must be an integer between 0 and 10000.",
                param=f"{param}.{name}",
                code="invalid_value",
            )
    return TurnDetection(float(threshold), padding, silence)


def _include(value: Any) -> tuple[str, ...]:  # noqa: ANN401
    if value is None:
        return ()
    if not isinstance(value, list) or any(item != LOGPROBS for item in value):
        raise InvalidRequestError(
            f"Invalid value for 'include': only '{LOGPROBS}' is supported.", param="session.include"
        )
    return tuple(value)


def render(config: SessionConfig, generation: Generation, session_id: str, expires_at: int) -> dict[str, Any]:
    """The session object of `session.created/updated` (GA) or `transcription_session.*` (beta)."""
    detection = (
        None
        if config.turn_detection is None
        else {
            "type": "server_vad",
            "threshold": config.turn_detection.threshold,
            "prefix_padding_ms": config.turn_detection.prefix_padding_ms,
            "silence_duration_ms": config.turn_detection.silence_duration_ms,
        }
    )
    transcription = {"model": config.model, "language": config.language, "prompt": config.prompt}
    include = list(config.include) or None
    fmt = config.input_format
    if generation == "beta":
        beta_format = {v: k for k, v in _BETA_FORMATS.items()}[fmt.encoding]
        return {
            "id": session_id,
            "object": "realtime.transcription_session",
            "expires_at": expires_at,
            "modalities": ["text"],
            "input_audio_format": beta_format,
            "input_audio_transcription": transcription,
            "turn_detection": detection,
            "input_audio_noise_reduction": config.noise_reduction,
            "include": include,
        }
    ga_format: dict[str, Any] = {"type": {v: k for k, v in _GA_FORMATS.items()}[fmt.encoding]}
    if fmt.encoding == "pcm16":
        ga_format["rate"] = fmt.rate
    return {
        "type": "transcription",
        "id": session_id,
        "object": "realtime.transcription_session",
        "expires_at": expires_at,
        "include": include,
        "audio": {
            "input": {
                "format": ga_format,
                "transcription": transcription,
                "noise_reduction": config.noise_reduction,
                "turn_detection": detection,
            }
        },
    }
