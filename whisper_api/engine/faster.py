"""The faster-whisper (CTranslate2) engine: int8 on CPU, float16 on CUDA."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator, Iterator
from dataclasses import dataclass

from whisper_api.engine.types import (
    Audio,
    LoadedModel,
    ModelLocation,
    Segment,
    TranscriptionInfo,
    TranscriptionOptions,
    segment_from,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    """Where and how a model runs."""

    device: str  # "cpu" or "cuda"
    index: int
    compute_type: str
    cpu_threads: int
    num_workers: int = 1  # transcriptions run in parallel on this model


def choose_device(
    device: str, compute_type: str, cpu_threads: int, device_index: int = 0, num_workers: int = 1
) -> DeviceChoice:
    """Resolve `auto` and `default` into a concrete device and compute type."""
    if device == "auto":
        import ctranslate2

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "default":
        compute_type = "float16" if device == "cuda" else "int8"
    return DeviceChoice(device, device_index, compute_type, cpu_threads, max(1, num_workers))


class FasterWhisperTranscriber(LoadedModel):
    """A faster-whisper model loaded on one device."""

    engine = "faster-whisper"

    def __init__(self, location: ModelLocation, choice: DeviceChoice) -> None:
        from faster_whisper import WhisperModel  # heavy: imported only in the worker

        super().__init__(location)
        self.choice = choice
        self._model = WhisperModel(
            str(location.path),
            device=choice.device,
            device_index=choice.index,
            compute_type=choice.compute_type,
            cpu_threads=choice.cpu_threads,
            num_workers=choice.num_workers,
            local_files_only=True,
        )

    def transcribe(
        self, audio: Audio, options: TranscriptionOptions
    ) -> tuple[TranscriptionInfo, Iterator[Segment]]:
        segments, info = self._model.transcribe(
            audio.samples,
            language=options.language_for(self.multilingual),
            task=options.task,
            beam_size=options.beam_size,
            temperature=list(options.temperatures),
            initial_prompt=options.prompt or None,
            word_timestamps=options.word_timestamps,
            vad_filter=options.vad_filter,
        )
        record = TranscriptionInfo(
            language=info.language,
            language_probability=float(info.language_probability),
            duration=float(info.duration),
        )
        return record, _segments(segments)


def _segments(segments: Generator) -> Iterator[Segment]:
    """Convert lazily; closing this iterator closes faster-whisper's, which stops decoding."""
    try:
        for s in segments:
            yield segment_from(int(s.id) - 1, dataclasses.asdict(s))  # faster-whisper counts from 1
    finally:
        segments.close()
