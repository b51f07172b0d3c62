"""Several models per worker on real weights: a memory budget, idle unload, one load per model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from whisper_api.config import Settings
from whisper_api.engine.engines import engine_for, loader_for, model_search
from whisper_api.engine.registry import ModelRegistry
from whisper_api.engine.types import ModelLocation, Transcriber
from whisper_api.errors import DeadlineExceededError, ModelCapacityError

TINY_MB = 86  # tiny.en's 72 MiB of float16 weights as int8 on CPU: the registry's estimate


class Events:
    """Records what the registry reports (as the metrics would)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    def loaded(self, name: str, seconds: float, ram_mb: float, gpu_mb: float) -> None:
        self.log.append(("loaded", name))

    def unloaded(self, name: str, reason: str) -> None:
        self.log.append((reason, name))


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with two more names for tiny.en's weights: three models to juggle."""
    folder = tmp_path_factory.mktemp("models")
    tiny = engine_for(Settings()).locate("tiny.en", model_search(Settings()))
    for name in ("tiny-a", "tiny-b"):
        (folder / name).symlink_to(tiny.path)
    return folder


@contextmanager
def registry(copies: Path, events: Events, **settings: object) -> Iterator[ModelRegistry]:
    values = {"model": "tiny.en", "extra_models": ("tiny-a", "tiny-b"), "model_dir": copies,
              "device": "cpu", "cpu_threads": 1, "inference_workers": 1, "max_loaded_models": 8,
              **settings}  # fmt: skip
    models = ModelRegistry(Settings(**values), events=events)
    try:
        yield models
    finally:
        models.close()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def two_fit(copies: Path, events: Events) -> Iterator[ModelRegistry]:
    with registry(copies, events, model_ram_mb=2 * TINY_MB + 10, pin_default_model=False) as models:
        yield models


def test_estimate_of_tiny_en_is_what_the_tests_assume(two_fit: ModelRegistry) -> None:
    two_fit.get("tiny.en")
    (state,) = [s for s in two_fit.states() if s.name == "tiny.en"]
    assert state.loaded and TINY_MB - 2 <= state.ram_mb <= TINY_MB + 2


def test_third_model_unloads_the_idle_one_never_the_busy_one(two_fit: ModelRegistry, events: Events) -> None:
    busy = two_fit.lease("tiny.en")  # older, but a request holds it
    two_fit.get("tiny-a")  # used and released: idle
    with two_fit.lease("tiny-b") as model:
        assert model.name == "tiny-b"
    busy.close()
    assert sorted(two_fit.loaded_names()) == ["tiny-b", "tiny.en"]
    assert events.log == [
        ("loaded", "tiny.en"),
        ("loaded", "tiny-a"),
        ("room", "tiny-a"),
        ("loaded", "tiny-b"),
    ]


def test_a_model_that_cannot_fit_next_to_busy_ones_is_a_clear_error(two_fit: ModelRegistry) -> None:
    with two_fit.lease("tiny.en"), two_fit.lease("tiny-a"), pytest.raises(ModelCapacityError) as caught:
        two_fit.lease("tiny-b")
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]
    assert "tiny-b" not in two_fit.loaded_names()
    two_fit.get("tiny-b")  # once they are free, it fits


def test_a_model_larger_than_the_budget_is_refused_before_loading(copies: Path, events: Events) -> None:
    budget = registry(copies, events, model_ram_mb=TINY_MB // 2)
    with budget as models, pytest.raises(ModelCapacityError, match=f"budget of {TINY_MB // 2} MiB"):
        models.get("tiny-a")
    assert events.log == []


def test_the_pinned_default_is_never_unloaded_for_room(copies: Path, events: Events) -> None:
    with registry(copies, events, model_ram_mb=2 * TINY_MB + 10) as models:
        models.get("tiny.en")
        models.get("tiny-a")
        models.get("tiny-b")
        assert sorted(models.loaded_names()) == ["tiny-b", "tiny.en"]
        assert ("room", "tiny.en") not in events.log


def test_idle_models_are_unloaded_but_not_the_pinned_default(copies: Path, events: Events) -> None:
    with registry(copies, events, model_idle_seconds=0.5) as models:
        models.get("tiny.en")
        models.get("tiny-a")
        give_up = time.monotonic() + 30
        while "tiny-a" in models.loaded_names() and time.monotonic() < give_up:
            time.sleep(0.1)
        assert models.loaded_names() == ["tiny.en"]
        assert ("idle", "tiny-a") in events.log


def test_concurrent_first_requests_load_the_model_once(copies: Path, events: Events) -> None:
    with registry(copies, events) as models:
        names: list[str] = []

        def first_request(models: ModelRegistry = models) -> None:
            names.append(models.get("tiny-a").name)

        threads = [threading.Thread(target=first_request) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert names == ["tiny-a"] * 4
        assert events.log == [("loaded", "tiny-a")]


def test_a_request_waiting_for_a_load_gives_up_at_its_deadline(copies: Path) -> None:
    settings = Settings(model="tiny.en", extra_models=("tiny-a",), model_dir=copies, device="cpu")
    started, finish = threading.Event(), threading.Event()
    real = loader_for(settings)

    def gated(location: ModelLocation) -> Transcriber:
        started.set()
        finish.wait(30)
        return real(location)

    models = ModelRegistry(settings, gated)
    loading = threading.Thread(target=models.get, args=("tiny-a",))
    loading.start()
    started.wait(30)
    with pytest.raises(DeadlineExceededError, match="still loading"):
        models.lease("tiny-a", timeout=0.2)
    finish.set()
    loading.join()
    with models.lease("tiny-a", timeout=0) as model:  # loaded: no wait at all
        assert model.name == "tiny-a"
