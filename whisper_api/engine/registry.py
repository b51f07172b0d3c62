"""The models one worker serves: located offline first, loaded on demand, unloaded when idle."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from whisper_api.config import Settings
from whisper_api.engine.loading import (
    ModelLocation,
    installed_packaged_models,
    is_known_name,
    locate_model,
)
from whisper_api.engine.types import ModelDescription, Transcriber
from whisper_api.engine.windows import WindowPolicy
from whisper_api.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

Loader = Callable[[ModelLocation], Transcriber]


ENGINES = ("faster-whisper", "openai-whisper")


def default_loader(settings: Settings) -> Loader:
    """The loader for the configured engine."""
    if settings.engine not in ENGINES:
        raise ValueError(f"unknown WHISPER_ENGINE {settings.engine!r}; use one of {', '.join(ENGINES)}")
    if settings.engine == "openai-whisper":
        return _openai_whisper_loader(settings)

    def load(location: ModelLocation) -> Transcriber:
        from whisper_api.engine.faster import FasterWhisperTranscriber, choose_device

        choice = choose_device(
            settings.device,
            settings.compute_type,
            settings.effective_cpu_threads,
            settings.device_index,
            settings.effective_inference_workers,
        )
        started = time.perf_counter()
        transcriber = FasterWhisperTranscriber(location, choice, window_policy(settings))
        transcriber.warm_up()
        logger.info(
            "loaded model %s from %s (%s) on %s/%s in %.2fs",
            location.name,
            location.path,
            location.source,
            choice.device,
            choice.compute_type,
            time.perf_counter() - started,
        )
        return transcriber

    return load


def _openai_whisper_loader(settings: Settings) -> Loader:
    def load(location: ModelLocation) -> Transcriber:
        from whisper_api.engine.openai_whisper import OpenAIWhisperTranscriber, choose_torch_device

        device = choose_torch_device(settings.device, settings.effective_cpu_threads, settings.device_index)
        started = time.perf_counter()
        transcriber = OpenAIWhisperTranscriber(location, device, window_policy(settings))
        transcriber.warm_up()
        logger.info(
            "loaded openai-whisper model %s from %s (%s) on %s (%s, %d threads) in %.2fs",
            location.name,
            location.path,
            location.source,
            device.name,
            "float16" if device.fp16 else "float32",
            device.cpu_threads,
            time.perf_counter() - started,
        )
        return transcriber

    return load


def window_policy(settings: Settings) -> WindowPolicy:
    """How long audio is cut into windows for the engine."""
    return WindowPolicy(chunk_seconds=settings.window_seconds, max_window_tokens=settings.max_window_tokens)


def locator(settings: Settings) -> Callable[..., ModelLocation]:
    """How the configured engine finds weights: CTranslate2 directories or openai-whisper checkpoints."""
    if settings.engine == "openai-whisper":
        from whisper_api.engine.checkpoints import locate_checkpoint

        return locate_checkpoint
    return locate_model


class ModelRegistry:
    """Locates, loads and keeps at most `max_loaded` models; thread-safe."""

    def __init__(self, settings: Settings, loader: Loader | None = None) -> None:
        self.settings = settings
        self.default_name = settings.model
        self._loader = loader or default_loader(settings)
        self._loaded: OrderedDict[str, Transcriber] = OrderedDict()
        self._locations: dict[str, ModelLocation] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self.load_seconds: dict[str, float] = {}

    def served_names(self) -> list[str]:
        """Every model name a client may ask for (besides OpenAI aliases)."""
        names = [self.default_name, *installed_packaged_models(), *self.settings.extra_models]
        return list(dict.fromkeys(names))

    def is_served(self, name: str) -> bool:
        return name in self.served_names()

    def locate(self, name: str) -> ModelLocation:
        if not self.is_served(name):
            raise ModelNotFoundError(name)
        with self._lock:
            cached = self._locations.get(name)
        if cached is not None:
            return cached
        location = locator(self.settings)(
            name,
            cache_dir=self.settings.cache_dir,
            model_dir=self.settings.model_dir,
            offline=self.settings.offline,
            download_timeout=self.settings.download_timeout,
        )
        with self._lock:
            self._locations[name] = location
        return location

    def get(self, name: str) -> Transcriber:
        """The loaded model `name`, loading it (once, even under concurrency) when needed."""
        with self._lock:
            model = self._loaded.get(name)
            if model is not None:
                self._loaded.move_to_end(name)
                return model
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:
                model = self._loaded.get(name)
            if model is not None:
                return model
            location = self.locate(name)
            started = time.perf_counter()
            model = self._loader(location)
            with self._lock:
                self.load_seconds[name] = time.perf_counter() - started
                self._loaded[name] = model
                self._loaded.move_to_end(name)
                self._evict()
            return model

    def _evict(self) -> None:
        """Drop least recently used models; requests still holding one finish with it."""
        limit = max(1, self.settings.max_loaded_models)
        while len(self._loaded) > limit:
            evicted = next(k for k in self._loaded if k != self.default_name)
            del self._loaded[evicted]
            logger.info("unloaded model %s (over %d loaded)", evicted, limit)

    def loaded_names(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    @property
    def ready(self) -> bool:
        with self._lock:
            return self.default_name in self._loaded

    def describe(self) -> list[ModelDescription]:
        """Served models that can be found here, for the model listing."""
        found = []
        for name in self.served_names():
            try:
                location = self.locate(name)
            except Exception as exc:  # noqa: BLE001 - a listing must not fail on one bad model
                logger.warning("model %s cannot be located: %s", name, exc)
                continue
            found.append(ModelDescription(name, location.multilingual, location.created))
        return found


__all__ = ["ModelRegistry", "is_known_name"]
