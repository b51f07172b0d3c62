"""`response_format=diarized_json`: segments labelled with their speaker."""

from __future__ import annotations

from typing import Any

from whisper_api.engine.types import Segment, Transcript
from whisper_api.web.formatting import usage
from whisper_api.web.schemas import TranscriptionDiarizedSchema

_DIARIZED = TranscriptionDiarizedSchema()


def segment_id(segment: Segment) -> str:
    """OpenAI's diarized segment ids are strings (`seg_0`, `seg_1`, ...)."""
    return f"seg_{segment.id}"


def render_diarized_segment(segment: Segment) -> dict[str, Any]:
    return {
        "type": "transcript.text.segment",
        "id": segment_id(segment),
        "start": segment.start,
        "end": segment.end,
        "text": segment.text.strip(),
        "speaker": segment.speaker or "A",
    }


def render_diarized(transcript: Transcript) -> dict[str, Any]:
    """`{task, duration, text, segments, usage}` as OpenAI's TranscriptionDiarized."""
    segments = [s for s in transcript.segments if s.text.strip()]
    return _DIARIZED.dump(
        {
            "task": "transcribe",
            "duration": transcript.info.duration,
            "text": " ".join(s.text.strip() for s in segments),
            "segments": [render_diarized_segment(s) for s in segments],
            "usage": usage(transcript.info.duration),
        }
    )
