"""Several models per worker: loaded once on demand, least recently used unloaded."""

from __future__ import annotations

import threading

from tests.support.fakes import FakeTranscriber, fake_loader
from whisper_api.config import Settings
from whisper_api.engine.registry import ModelRegistry


def test_models_load_once_and_lru_is_unloaded_but_never_the_default(tmp_path, monkeypatch) -> None:
    loaded: dict[str, FakeTranscriber] = {}
    counting = fake_loader(loaded)
    calls: list[str] = []

    def loader(location):
        calls.append(location.name)
        return counting(location)

    tiny = ModelRegistry(Settings(), fake_loader({})).locate("tiny.en")
    settings = Settings(model="base", extra_models=("tiny.en", "alias-dir"), max_loaded_models=2,
                        model_dir=tmp_path)  # fmt: skip
    (tmp_path / "alias-dir").symlink_to(tiny.path)
    registry = ModelRegistry(settings, loader)
    registry.get("base")
    registry.get("tiny.en")
    registry.get("tiny.en")
    assert calls == ["base", "tiny.en"]
    registry.get("alias-dir")
    assert registry.loaded_names() == ["base", "alias-dir"]
    registry.get("tiny.en")
    assert calls == ["base", "tiny.en", "alias-dir", "tiny.en"]
    assert "base" in registry.loaded_names()


def test_concurrent_requests_load_a_model_once() -> None:
    calls: list[str] = []
    inner = fake_loader({})

    def slow_loader(location):
        calls.append(location.name)
        threading.Event().wait(0.2)
        return inner(location)

    registry = ModelRegistry(Settings(model="tiny.en"), slow_loader)
    threads = [threading.Thread(target=registry.get, args=("tiny.en",)) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["tiny.en"]
    assert registry.ready
