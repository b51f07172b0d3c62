"""The models one worker serves: located offline first, loaded on first use, least recently used unloaded."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from whisper_api.config import Settings
from whisper_api.engine.engines import Loader, engine_for, loader_for, model_search
from whisper_api.engine.locator import installed_packaged_models, is_known_name
from whisper_api.engine.types import ModelDescription, ModelLocation, Transcriber
from whisper_api.errors import ModelNotFoundError

logger = logging.getLogger(__name__)

#: Told each load's name and seconds (the metrics listen).
LoadObserver = Callable[[str, float], None]


class ModelRegistry:
    """Locates, loads and keeps at most `max_loaded` models; thread-safe."""

    def __init__(
        self, settings: Settings, loader: Loader | None = None, on_load: LoadObserver | None = None
    ) -> None:
        self.settings = settings
        self.default_name = settings.model
        self._engine = engine_for(settings)
        self._loader = loader or loader_for(settings)
        self._on_load = on_load
        self._loaded: OrderedDict[str, Transcriber] = OrderedDict()
        self._locations: dict[str, ModelLocation] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

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
        location = self._engine.locate(name, model_search(self.settings))
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
            seconds = time.perf_counter() - started
            logger.info("loaded model %s in %.2fs", name, seconds)
            if self._on_load is not None:
                self._on_load(name, seconds)
            with self._lock:
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
