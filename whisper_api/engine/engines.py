"""One record per engine: how it locates weights and opens them; loading, warm-up and timing shared.

The rest of the code never asks which engine runs: it gets a `Loader` from `loader_for` and
`Transcriber`s from it (each carries its own token counter).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from whisper_api.config import Settings
from whisper_api.engine.tokens import TokenCounter, ct2_token_counter, whisper_token_counter
from whisper_api.engine.types import (
    SAMPLE_RATE,
    Audio,
    ModelLocation,
    ModelSearch,
    Transcriber,
    TranscriptionOptions,
)
from whisper_api.engine.windows import WindowPolicy

logger = logging.getLogger(__name__)

Locator = Callable[[str, ModelSearch], ModelLocation]
Loader = Callable[[ModelLocation], Transcriber]
#: Opens located weights on the device the settings choose; returns the model and where it runs.
Opener = Callable[[ModelLocation, Settings], tuple[Transcriber, str]]
#: (RAM MiB, GPU MiB) located weights will take once opened with these settings.
MemoryEstimate = Callable[[ModelLocation, Settings], tuple[float, float]]
#: The tokenizer of located weights, without opening them; None when they ship none.
CounterFor = Callable[[ModelLocation], TokenCounter | None]

_MIB = 1 << 20
#: Resident size per byte of float16 weights, by compute type. Measured (bench/model_memory.py):
#: base as int8 on CPU raised a worker's RSS by 164 MiB for 139 MiB of weights (tensors, the
#: allocator's cache, the tokenizer); the others are scaled from it by bytes per weight.
_COMPUTE_FACTOR = {"int8": 1.2, "float16": 1.6, "bfloat16": 1.6, "float32": 3.0}


@dataclass(frozen=True)
class Engine:
    """What tells one engine from the other: the only place that does."""

    name: str
    locate: Locator
    open: Opener
    estimate_mb: MemoryEstimate
    token_counter: CounterFor


def _locate_ct2(name: str, search: ModelSearch) -> ModelLocation:
    from whisper_api.engine.locator import locate_model

    return locate_model(name, search)


def _locate_checkpoint(name: str, search: ModelSearch) -> ModelLocation:
    from whisper_api.engine.checkpoints import locate_checkpoint  # imports torch

    return locate_checkpoint(name, search)


def _open_faster(location: ModelLocation, settings: Settings) -> tuple[Transcriber, str]:
    from whisper_api.engine.faster import FasterWhisperTranscriber, choose_device

    choice = choose_device(
        settings.device,
        settings.compute_type,
        settings.effective_cpu_threads,
        settings.device_index,
        settings.effective_inference_workers,
    )
    where = f"{choice.device}:{choice.index}/{choice.compute_type}, {choice.cpu_threads} threads"
    from whisper_api.engine.batched import BatchPolicy

    batch = BatchPolicy(batch_size=settings.batch_windows)
    if batch.enabled:
        where += f", {batch.batch_size} windows per batch"
    return FasterWhisperTranscriber(location, choice, window_policy(settings), batch), where


def _open_openai_whisper(location: ModelLocation, settings: Settings) -> tuple[Transcriber, str]:
    from whisper_api.engine.openai_whisper import OpenAIWhisperTranscriber, choose_torch_device

    device = choose_torch_device(settings.device, settings.effective_cpu_threads, settings.device_index)
    precision = "float16" if device.fp16 else "float32"
    where = f"{device.name}/{precision}, {device.cpu_threads} threads"
    return OpenAIWhisperTranscriber(location, device, window_policy(settings)), where


def _ct2_counter(location: ModelLocation) -> TokenCounter | None:
    return ct2_token_counter(location.path)


def _checkpoint_counter(location: ModelLocation) -> TokenCounter:
    from whisper_api.engine.checkpoints import checkpoint_vocabulary

    multilingual = location.multilingual  # as openai-whisper's Whisper.num_languages counts them:
    return whisper_token_counter(
        multilingual, checkpoint_vocabulary(location.path) - 51765 - int(multilingual)
    )


def _split(location: ModelLocation, factor: float, on_gpu: bool) -> tuple[float, float]:
    size = location.weights.stat().st_size / _MIB * factor
    return (size * 0.1, size) if on_gpu else (size, 0.0)  # on a GPU, RAM keeps little beyond the tokenizer


def _estimate_faster(location: ModelLocation, settings: Settings) -> tuple[float, float]:
    on_gpu = settings.device == "cuda"
    if settings.device == "auto":
        import ctranslate2

        on_gpu = ctranslate2.get_cuda_device_count() > 0
    compute = settings.compute_type
    if compute == "default":
        compute = "float16" if on_gpu else "int8"
    return _split(location, _COMPUTE_FACTOR.get(compute.split("_")[0], 1.0), on_gpu)


def _estimate_openai_whisper(location: ModelLocation, settings: Settings) -> tuple[float, float]:
    on_gpu = settings.device == "cuda"
    if settings.device == "auto":
        import torch

        on_gpu = torch.cuda.is_available()
    return _split(location, 1.0 if on_gpu else 2.0, on_gpu)  # float16 on CUDA, float32 on CPU


ENGINES: dict[str, Engine] = {
    "faster-whisper": Engine("faster-whisper", _locate_ct2, _open_faster, _estimate_faster, _ct2_counter),
    "openai-whisper": Engine(
        "openai-whisper",
        _locate_checkpoint,
        _open_openai_whisper,
        _estimate_openai_whisper,
        _checkpoint_counter,
    ),
}


def window_policy(settings: Settings) -> WindowPolicy:
    """How long audio is cut into windows for the engine."""
    return WindowPolicy(
        chunk_seconds=settings.window_seconds,
        max_window_tokens=settings.max_window_tokens,
        language_per_window=settings.language_per_window,
    )


def engine_for(settings: Settings) -> Engine:
    """The configured engine, or a ValueError naming the choices."""
    engine = ENGINES.get(settings.engine)
    if engine is None:
        raise ValueError(f"unknown WHISPER_ENGINE {settings.engine!r}; use one of {', '.join(ENGINES)}")
    return engine


def model_search(settings: Settings) -> ModelSearch:
    return ModelSearch(settings.cache_dir, settings.model_dir, settings.offline, settings.download_timeout)


def warm_up(transcriber: Transcriber) -> None:
    """Run one short decode so the first request does not pay for lazy initialisation."""
    silence = Audio(np.zeros(SAMPLE_RATE, dtype=np.float32))
    _, segments = transcriber.transcribe(silence, TranscriptionOptions(beam_size=1, language="en"))
    for _ in segments:
        pass


def loader_for(settings: Settings) -> Loader:
    """Open and warm up located weights with the configured engine."""
    engine = engine_for(settings)

    def load(location: ModelLocation) -> Transcriber:
        transcriber, where = engine.open(location, settings)
        warm_up(transcriber)
        logger.info(
            "opened %s model %s from %s (%s) on %s",
            engine.name,
            location.name,
            location.path,
            location.source,
            where,
        )
        return transcriber

    return load
