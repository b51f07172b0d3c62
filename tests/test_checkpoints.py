"""Where the openai-whisper engine finds its weights, offline first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.server import free_port
from whisper_api.engine.checkpoints import locate_checkpoint
from whisper_api.engine.convert import converted_checkpoint
from whisper_api.engine.locator import locate_model
from whisper_api.engine.types import ModelSearch
from whisper_api.errors import ModelNotFoundError, ModelUnavailableError


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def tiny_pt(cache_dir: Path) -> Path:
    return converted_checkpoint(
        locate_model("tiny.en", ModelSearch(cache_dir=cache_dir)).path, "tiny.en", cache_dir
    )


@pytest.fixture(autouse=True)
def empty_whisper_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """openai-whisper's own cache (~/.cache/whisper) redirected to an empty folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "whisper"


def test_a_pt_path_is_used_as_it_is(tiny_pt: Path, cache_dir: Path) -> None:
    location = locate_checkpoint(str(tiny_pt), ModelSearch(cache_dir=cache_dir, offline=True))
    assert (location.path, location.source) == (tiny_pt, "checkpoint")


def test_a_missing_pt_path_is_reported(cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        locate_checkpoint(str(tmp_path / "nope.pt"), ModelSearch(cache_dir=cache_dir, offline=True))


def test_model_dir_comes_before_the_packaged_model(tiny_pt: Path, cache_dir: Path, tmp_path: Path) -> None:
    shutil.copyfile(tiny_pt, tmp_path / "tiny.en.pt")
    location = locate_checkpoint(
        "tiny.en", ModelSearch(cache_dir=cache_dir, model_dir=tmp_path, offline=True)
    )
    assert (location.path, location.source) == (tmp_path / "tiny.en.pt", "model_dir")


def test_openai_whispers_cache_comes_before_the_packaged_model(
    tiny_pt: Path, cache_dir: Path, empty_whisper_cache: Path
) -> None:
    empty_whisper_cache.mkdir(parents=True)
    shutil.copyfile(tiny_pt, empty_whisper_cache / "tiny.en.pt")
    location = locate_checkpoint("tiny.en", ModelSearch(cache_dir=cache_dir, offline=True))
    assert location.source == "whisper-cache"


def test_packaged_model_is_converted_into_the_cache(tiny_pt: Path, cache_dir: Path) -> None:
    location = locate_checkpoint("tiny.en", ModelSearch(cache_dir=cache_dir, offline=True))
    assert (location.path, location.source) == (tiny_pt, "converted")
    assert location.multilingual is False


def test_offline_mode_never_downloads(cache_dir: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="offline"):
        locate_checkpoint("small", ModelSearch(cache_dir=cache_dir, offline=True))


def test_download_goes_through_the_proxy(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy that refuses connections makes the download fail fast, with a useful error."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{free_port()}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ModelUnavailableError, match="download failed") as caught:
        locate_checkpoint("small", ModelSearch(cache_dir=cache_dir, download_timeout=5))
    assert isinstance(caught.value.__cause__.reason, ConnectionRefusedError)  # the proxy, not DNS


def test_unknown_names_are_not_found(cache_dir: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        locate_checkpoint("whisper-9000", ModelSearch(cache_dir=cache_dir, offline=True))
