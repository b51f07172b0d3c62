"""The openai-whisper (PyTorch) engine: float16 on CUDA, float32 on CPU.

openai-whisper's `transcribe()` returns only when the whole file is decoded, so this engine's
segments arrive in one burst at the end (a stream still works: its deltas come together). The
language is detected before that, so the request learns it first, as with faster-whisper.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from whisper_api.engine.checkpoints import load_whisper_model
from whisper_api.engine.languages import LanguageSwitch, pick_language
from whisper_api.engine.logprobs import TorchScorer, with_logprobs
from whisper_api.engine.transcriber import LoadedModel
from whisper_api.engine.types import (
    Audio,
    ModelLocation,
    Segment,
    TranscriptionOptions,
    VadSettings,
    segment_from,
)
from whisper_api.engine.windows import AudioReader, EncodeAhead, WindowPolicy, speech_spans, vad_spans

logger = logging.getLogger(__name__)

#: Candidates sampled per temperature above 0, as faster-whisper and the openai-whisper CLI do.
BEST_OF = 5


@dataclass(frozen=True)
class TorchDevice:
    """Where a PyTorch model runs, and with how many CPU threads."""

    device: str  # "cpu" or "cuda"
    index: int
    cpu_threads: int

    @property
    def name(self) -> str:
        return f"cuda:{self.index}" if self.device == "cuda" else "cpu"

    @property
    def fp16(self) -> bool:
        return self.device == "cuda"


def choose_torch_device(device: str, cpu_threads: int, device_index: int = 0) -> TorchDevice:
    """Resolve `auto`, and give torch this worker's share of the CPU cores (no oversubscription)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(max(1, cpu_threads))
    # Fails once set, or once parallel work has started in this process: the first setting stays.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    return TorchDevice(device, device_index, cpu_threads)


class OpenAIWhisperTranscriber(LoadedModel):
    """An openai-whisper model on one device; one transcription at a time per model."""

    engine = "openai-whisper"
    switches_inside_chunks = False  # transcribe() keeps one language per call

    def __init__(
        self, location: ModelLocation, device: TorchDevice, windows: WindowPolicy | None = None
    ) -> None:
        super().__init__(location, windows)
        self.device = device
        self._model = load_whisper_model(location.path, device.name, name=location.name)
        # PyTorch modules are not safe to run from several threads at once (kv-cache hooks).
        self._lock = threading.Lock()

    def detect_language(self, audio: Audio, allowed: tuple[str, ...] = ()) -> tuple[str, float]:
        """The most likely language of the first 30 s (among `allowed` when given)."""
        return pick_language(self._probabilities(AudioReader(audio).read(0.0, 30.0)), allowed)

    def _probabilities(self, samples: np.ndarray) -> list[tuple[str, float]]:
        """Each language's probability for the first 30 s of `samples`."""
        import whisper

        mel = whisper.log_mel_spectrogram(
            samples[: whisper.audio.N_SAMPLES], self._model.dims.n_mels, padding=whisper.audio.N_SAMPLES
        )
        segment = whisper.pad_or_trim(mel, whisper.audio.N_FRAMES).to(self._model.device)
        if self.device.fp16:
            segment = segment.half()
        with self._lock:
            _, probs = self._model.detect_language(segment)
        return [(code, float(p)) for code, p in probs.items()]

    def decode(
        self,
        samples: np.ndarray,
        options: TranscriptionOptions,
        language: str,
        prompt: str | None,
        switch: LanguageSwitch | None = None,
        ahead: EncodeAhead | None = None,  # none here: transcribe() encodes inside each call
    ) -> Iterator[Segment]:
        if switch is not None:
            # openai-whisper's transcribe() keeps one language per call: detect the chunk's (chunks
            # are one 30 s window here: `switches_inside_chunks`), at the cost of one more encoder
            # pass. Earlier text in another language would pull this chunk into that one: not used.
            before = switch.current
            language = switch.choose(self._probabilities(samples))
            prompt = prompt if before in (None, language) else None
        segments = self._decode(samples, options, language, prompt)
        if not options.logprobs:
            return segments
        # Scored within the chunk it was decoded in (segment seeks count from the chunk's start).
        scorer = TorchScorer(self._model, Audio(samples), language, options.task, self._lock)
        return with_logprobs(segments, scorer)

    def _decode(
        self, samples: np.ndarray, options: TranscriptionOptions, language: str, prompt: str | None
    ) -> Iterator[Segment]:
        """One chunk through openai-whisper's own `transcribe()` (the whole chunk at once)."""
        import torch
        import whisper

        kwargs: dict[str, Any] = {}
        if options.vad_filter:
            clips = speech_clips(samples, options.vad)
            if not clips:
                return
            kwargs["clip_timestamps"] = clips
        with self._lock:
            # The temperature fallback samples: seeded, the same chunk always gives the same text.
            torch.manual_seed(SAMPLING_SEED)
            result = whisper.transcribe(
                self._model,
                samples,
                verbose=None,
                temperature=options.temperatures,
                initial_prompt=keyword_prompt(options.keywords, prompt),
                word_timestamps=options.word_timestamps,
                task=options.task,
                language=language,
                beam_size=options.beam_size,
                best_of=BEST_OF,
                fp16=self.device.fp16,
                sample_len=self.windows.window_tokens,
                **kwargs,
            )
        for index, segment in enumerate(result["segments"]):
            yield segment_from(index, segment, language)


#: Seed of the sampling in openai-whisper's temperature fallback (torch's generator).
SAMPLING_SEED = 0


def keyword_prompt(keywords: tuple[str, ...], prompt: str | None) -> str | None:
    """openai-whisper has no hotwords: the keywords lead the prompt, which conditions decoding."""
    text = " ".join([*keywords, prompt or ""]).strip()
    return text or None


def speech_clips(samples: np.ndarray, vad: VadSettings | None = None) -> list[float]:
    """Start and end seconds of speech (Silero VAD, shipped with faster-whisper), flattened."""
    if vad is None:
        return [t for span in speech_spans(samples) for t in span]
    options = {"threshold": vad.threshold, "speech_pad_ms": vad.speech_pad_ms}
    spans = vad_spans(samples, min_silence_duration_ms=vad.min_silence_ms, **options)
    return [t for span in spans for t in span]
