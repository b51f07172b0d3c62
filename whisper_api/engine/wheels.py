"""`pack`: a model folder as pip wheels, each under a size limit a mirror accepts.

Files larger than the limit are cut into pieces; pieces go into as many wheels as needed
(`whisper-api-model-<name>`, then `-part2`, `-part3`, ... which the first one requires, so
`pip install whisper-api-model-<name>` from a mirror fetches them all). The first wheel carries
the sha256 manifest, the list of pieces and an entry point in the `whisper_api.models` group, by
which an installed server finds the model and assembles it into its cache, verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from whisper_api.engine.manifest import MANIFEST, file_sha256, model_files
from whisper_api.engine.model_store import WHEEL_GROUP

_MIB = 1 << 20
_OVERHEAD = 64 * 1024  # metadata, RECORD and zip headers of one wheel


@dataclass
class _Wheel:
    package: str
    distribution: str
    members: list[tuple[str, Path, int, int]] = field(default_factory=list)  # name, file, offset, size
    size: int = 0


def slug(name: str) -> str:
    """A model name as a Python package name part: `large-v3` -> `large_v3`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def pack(
    folder: Path, name: str, out_dir: Path, *, version: str = "1.0.0", max_mb: float = 95.0
) -> list[Path]:
    """Write the wheels of the model in `folder` into `out_dir`; their paths, the main one first."""
    limit = int(max_mb * _MIB) - _OVERHEAD
    if limit <= _MIB:
        raise ValueError("--max-wheel-mb must leave room for at least 1 MiB of weights per wheel")
    base = f"whisper_api_model_{slug(name)}"
    wheels = [_Wheel(base, base)]
    pieces: dict[str, list[dict[str, str]]] = {}
    files: dict[str, dict[str, object]] = {}
    for path in model_files(folder):
        rel = str(path.relative_to(folder))
        size = path.stat().st_size
        files[rel] = {"size": size, "sha256": file_sha256(path)}
        pieces[rel] = []
        offset = 0
        while offset < size or (size == 0 and not pieces[rel]):
            wheel = wheels[-1]
            if wheel.size >= limit:
                part = len(wheels) + 1
                wheel = _Wheel(f"{base}_part{part}", f"{base}_part{part}")
                wheels.append(wheel)
            take = min(size - offset, limit - wheel.size)
            member = f"{rel}.{len(pieces[rel]):03d}"
            wheel.members.append((member, path, offset, take))
            wheel.size += take
            pieces[rel].append({"package": wheel.package, "file": member})
            offset += take
            if size == 0:
                break
    manifest = {"name": name, "format": "ctranslate2", "version": version, "files": files, "pieces": pieces}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for index, wheel in enumerate(wheels):
        extra: dict[str, bytes] = {}
        requires = []
        entry_points = ""
        if index == 0:
            extra[MANIFEST] = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
            requires = [f"{w.distribution.replace('_', '-')}=={version}" for w in wheels[1:]]
            entry_points = f"[{WHEEL_GROUP}]\n{name} = {wheel.package}\n"
        summary = f"Whisper model {name} for whisper_api" + (f" (part {index + 1})" if index else "")
        written.append(_write_wheel(out_dir, wheel, version, summary, requires, entry_points, extra))
    return written


def _write_wheel(
    out_dir: Path,
    wheel: _Wheel,
    version: str,
    summary: str,
    requires: list[str],
    entry_points: str,
    extra: dict[str, bytes],
) -> Path:
    dist_info = f"{wheel.distribution}-{version}.dist-info"
    path = out_dir / f"{wheel.distribution}-{version}-py3-none-any.whl"
    record: list[str] = []

    def add(archive: zipfile.ZipFile, arcname: str, data: bytes) -> None:
        archive.writestr(arcname, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arcname},sha256={digest},{len(data)}")

    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {wheel.distribution.replace('_', '-')}",
        f"Version: {version}",
        f"Summary: {summary}",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        add(archive, f"{wheel.package}/__init__.py", b'"""Model data for whisper_api (no code)."""\n')
        for name, data in extra.items():
            add(archive, f"{wheel.package}/{name}", data)
        for member, source, offset, size in wheel.members:
            with source.open("rb") as fh:
                fh.seek(offset)
                add(archive, f"{wheel.package}/{member}", fh.read(size))
        add(archive, f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode())
        wheel_info = "Wheel-Version: 1.0\nGenerator: whisper_api\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        add(archive, f"{dist_info}/WHEEL", wheel_info.encode())
        if entry_points:
            add(archive, f"{dist_info}/entry_points.txt", entry_points.encode())
        record.append(f"{dist_info}/RECORD,,")
        archive.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path
