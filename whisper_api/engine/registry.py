"""The models one worker serves: located offline first, loaded on first use, kept under a budget.

A request takes a `ModelLease` (the model counts as busy until the lease is closed). Room for a
model is made by unloading the least recently used model that is neither busy nor pinned; a model
that still cannot fit is a `ModelCapacityError`, never an out-of-memory kill. Models unused for
`model_idle_seconds` are unloaded by a background thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from whisper_api.config import Settings
from whisper_api.engine.engines import Loader, engine_for, loader_for, model_search
from whisper_api.engine.locator import installed_models, is_known_name
from whisper_api.engine.memory import loading_model, release_memory
from whisper_api.engine.tokens import TokenCounter
from whisper_api.engine.types import ModelDescription, ModelLocation, Transcriber
from whisper_api.errors import DeadlineExceededError, ModelCapacityError, ModelNotFoundError

logger = logging.getLogger(__name__)

#: Estimated (RAM MiB, GPU MiB) a located model takes once loaded.
Estimator = Callable[[ModelLocation], tuple[float, float]]


class ModelEvents(Protocol):
    """Told what happens to models (the metrics listen)."""

    def loaded(self, name: str, seconds: float, ram_mb: float, gpu_mb: float) -> None: ...

    def unloaded(self, name: str, reason: str) -> None: ...


@dataclass
class LoadedEntry:
    """A model in this worker's memory and its bookkeeping."""

    name: str
    transcriber: Transcriber
    location: ModelLocation
    ram_mb: float
    gpu_mb: float
    load_seconds: float
    last_used: float
    busy: int = 0


@dataclass(frozen=True)
class ModelState:
    """One served model as this worker sees it, for the admin API and the listing."""

    name: str
    loaded: bool
    pinned: bool
    busy: int
    ram_mb: float
    gpu_mb: float
    last_used: float | None  # seconds since the epoch
    load_seconds: float | None


class ModelLease:
    """A loaded model held for one request: busy (never unloaded) until closed."""

    def __init__(self, registry: ModelRegistry, entry: LoadedEntry) -> None:
        self._registry = registry
        self._entry: LoadedEntry | None = entry
        self.transcriber = entry.transcriber

    def close(self) -> None:
        entry, self._entry = self._entry, None
        if entry is not None:
            self._registry._release(entry)

    def __enter__(self) -> Transcriber:
        return self.transcriber

    def __exit__(self, *exc: object) -> None:
        self.close()


class ModelRegistry:
    """Locates, loads, leases and unloads this worker's models; thread-safe."""

    def __init__(
        self,
        settings: Settings,
        loader: Loader | None = None,
        events: ModelEvents | None = None,
        estimate: Estimator | None = None,
    ) -> None:
        self.settings = settings
        self.default_name = settings.model
        engine = engine_for(settings)
        self._engine = engine
        self._loader = loader or loader_for(settings)
        self._estimate = estimate or (lambda location: engine.estimate_mb(location, settings))
        self._events = events
        self._loaded: dict[str, LoadedEntry] = {}
        self._reserved: dict[str, tuple[float, float]] = {}  # loads in progress
        self._pinned: set[str] = {self.default_name} if settings.pin_default_model else set()
        self._locations: dict[str, ModelLocation] = {}
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._reaper: threading.Thread | None = None
        self._stop = threading.Event()

    def served_names(self) -> list[str]:
        """Every model name a client may ask for (besides OpenAI aliases)."""
        names = [
            self.default_name,
            *installed_models(self.settings.cache_dir),
            *self.settings.extra_models,
            *self.settings.alias_map.values(),
        ]
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

    def token_counter(self, name: str) -> TokenCounter | None:
        """`name`'s tokenizer, for OpenAI's token usage (the model need not be loaded)."""
        return self._engine.token_counter(self.locate(name))

    def lease(self, name: str, timeout: float | None = None) -> ModelLease:
        """Model `name`, loaded (once, even under concurrency) if needed and busy until closed.

        A request that finds the model loading waits for it, at most `timeout` seconds.
        """
        with self._lock:
            entry = self._loaded.get(name)
            if entry is not None:
                entry.busy += 1
                return ModelLease(self, entry)
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        if not load_lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
            raise DeadlineExceededError(f"Model '{name}' was still loading when the request's time ran out.")
        try:
            with self._lock:
                entry = self._loaded.get(name)
                if entry is not None:
                    entry.busy += 1
                    return ModelLease(self, entry)
            entry = self._load(name)
            with self._lock:
                entry.busy += 1
            return ModelLease(self, entry)
        finally:
            load_lock.release()

    def get(self, name: str) -> Transcriber:
        """The loaded model `name` without holding it (warm-up at start, admin loads)."""
        with self.lease(name) as transcriber:
            return transcriber

    def _load(self, name: str) -> LoadedEntry:
        """Load `name` under its load lock: make room, load, record."""
        location = self.locate(name)
        ram, gpu = self._estimate(location)
        with self._lock:
            evicted = self._make_room(name, ram, gpu)
            self._reserved[name] = (ram, gpu)
        if evicted:
            release_memory()  # the evicted model's pages go back before the new one takes its own
        try:
            started = time.perf_counter()
            with loading_model(self.settings.malloc_mmap_threshold_kb):
                transcriber = self._loader(location)
            seconds = time.perf_counter() - started
        finally:
            with self._lock:
                del self._reserved[name]
        entry = LoadedEntry(name, transcriber, location, ram, gpu, seconds, time.time())
        with self._lock:
            self._loaded[name] = entry
        logger.info(
            "loaded %s model %s in %.2fs (about %.0f MiB RAM, %.0f MiB GPU)",
            self._engine.name,
            name,
            seconds,
            ram,
            gpu,
        )
        if self._events is not None:
            self._events.loaded(name, seconds, ram, gpu)
        self._start_reaper()
        return entry

    def _make_room(self, name: str, ram: float, gpu: float) -> bool:
        """Unload idle, unpinned models (least recently used first) until `name` fits; lock held.
        Whether any was unloaded."""
        budgets = (self.settings.model_ram_mb, self.settings.model_gpu_mb)
        for need, budget, kind in ((ram, budgets[0], "RAM"), (gpu, budgets[1], "GPU memory")):
            if budget and need > budget:
                raise ModelCapacityError(
                    f"Model '{name}' needs about {need:.0f} MiB of {kind}, more than this worker's "
                    f"budget of {budget} MiB; raise the budget or use a smaller model."
                )
        evicted = False
        while not self._fits(ram, gpu):
            idle = [e for e in self._loaded.values() if e.busy == 0 and e.name not in self._pinned]
            if not idle:
                raise ModelCapacityError(
                    f"Model '{name}' does not fit next to the models in use ({', '.join(self._loaded)}); "
                    "retry when they are free.",
                    headers={"Retry-After": "5"},
                )
            self._unload_locked(min(idle, key=lambda e: e.last_used).name, "room")
            evicted = True
        return evicted

    def _fits(self, ram: float, gpu: float) -> bool:
        holders = [*self._loaded.values()]
        used_ram = sum(e.ram_mb for e in holders) + sum(r for r, _ in self._reserved.values())
        used_gpu = sum(e.gpu_mb for e in holders) + sum(g for _, g in self._reserved.values())
        ram_budget, gpu_budget = self.settings.model_ram_mb, self.settings.model_gpu_mb
        return (
            len(holders) + len(self._reserved) < max(1, self.settings.max_loaded_models)
            and (not ram_budget or used_ram + ram <= ram_budget)
            and (not gpu_budget or used_gpu + gpu <= gpu_budget)
        )

    def _release(self, entry: LoadedEntry) -> None:
        with self._lock:
            entry.busy -= 1
            entry.last_used = time.time()

    def unload(self, name: str, reason: str = "admin") -> bool:
        """Unload `name` unless a request holds it; whether it was unloaded. Pinned models too."""
        with self._lock:
            entry = self._loaded.get(name)
            if entry is None or entry.busy:
                return False
            del entry  # the model's last reference: its memory can only be returned once it is gone
            self._unload_locked(name, reason)
        release_memory()
        return True

    def _unload_locked(self, name: str, reason: str) -> None:
        del self._loaded[name]
        logger.info("unloaded model %s (%s)", name, reason)
        if self._events is not None:
            self._events.unloaded(name, reason)

    def unload_idle(self, now: float | None = None) -> list[str]:
        """Unload models unused for `model_idle_seconds` (never busy or pinned ones)."""
        limit = self.settings.model_idle_seconds
        if limit <= 0:
            return []
        now = time.time() if now is None else now
        with self._lock:
            stale = [
                e.name
                for e in self._loaded.values()
                if e.busy == 0 and e.name not in self._pinned and now - e.last_used >= limit
            ]
            for name in stale:
                self._unload_locked(name, "idle")
        if stale:
            release_memory()
        return stale

    def _start_reaper(self) -> None:
        if self.settings.model_idle_seconds <= 0:
            return
        with self._lock:
            if self._reaper is not None:
                return
            self._reaper = threading.Thread(target=self._reap, name="model-idle-unload", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        interval = min(5.0, max(0.05, self.settings.model_idle_seconds / 4))
        while not self._stop.wait(interval):
            try:
                self.unload_idle()
            except Exception:  # the reaper must outlive one bad unload
                logger.exception("idle unload failed")

    def close(self) -> None:
        """Stop the idle-unload thread (tests; a worker simply exits)."""
        self._stop.set()

    def pin(self, name: str, pinned: bool = True) -> None:
        """Keep `name` loaded (never unloaded for room or idleness), or let it go again."""
        with self._lock:
            if pinned:
                self._pinned.add(name)
            else:
                self._pinned.discard(name)

    def is_pinned(self, name: str) -> bool:
        with self._lock:
            return name in self._pinned

    def loaded_names(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def states(self) -> list[ModelState]:
        """Every served model and whether this worker holds it."""
        names = [*self.served_names(), *(n for n in self.loaded_names() if not self.is_served(n))]
        with self._lock:
            states = []
            for name in names:
                e = self._loaded.get(name)
                states.append(
                    ModelState(
                        name=name,
                        loaded=e is not None,
                        pinned=name in self._pinned,
                        busy=e.busy if e else 0,
                        ram_mb=round(e.ram_mb, 1) if e else 0.0,
                        gpu_mb=round(e.gpu_mb, 1) if e else 0.0,
                        last_used=e.last_used if e else None,
                        load_seconds=round(e.load_seconds, 3) if e else None,
                    )
                )
        return states

    @property
    def engine_name(self) -> str:
        return self._engine.name

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


__all__ = ["ModelLease", "ModelRegistry", "is_known_name"]
