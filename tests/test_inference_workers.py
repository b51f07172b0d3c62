"""WHISPER_API_INFERENCE_WORKERS: one worker process runs several transcriptions at once."""

from __future__ import annotations

from whisper_api.config import Settings
from whisper_api.engine.registry import ModelRegistry


def test_inference_workers_setting_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"WHISPER_API_INFERENCE_WORKERS": "2"})
    assert settings.inference_workers == 2


def test_inference_workers_give_the_loaded_model_parallel_ctranslate2_workers() -> None:
    registry = ModelRegistry(Settings(model="tiny.en", inference_workers=2, cpu_threads=1))
    transcriber = registry.get("tiny.en")
    assert transcriber._model.model.num_workers == 2
