"""Command line for models: `python -m whisper_api.models {list,verify,import,pack,convert}`.

`list` shows every model the server can find, where it comes from and its recorded sha256;
`verify [NAME]` re-hashes models against the manifest written when they entered the cache.
`import PATH [--name N]` copies a CTranslate2 folder or a Hugging Face snapshot folder
(`models--Org--name/snapshots/<rev>`) into the cache, with a manifest.
`pack NAME [--out DIR] [--as NEW] [--max-wheel-mb 95]` writes the model as pip wheels for a mirror.

`convert` turns a CTranslate2 Whisper model (a packaged name such as `base` or `tiny.en`, a name
under WHISPER_MODEL_DIR, or a directory holding model.bin and config.json) into an openai-whisper
checkpoint. Without `--out` it is written to the cache folder the openai-whisper engine reads
(`WHISPER_API_CACHE_DIR/openai-whisper/<name>.pt`), converted once. The path is printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from whisper_api.config import Settings
from whisper_api.errors import ApiError

if TYPE_CHECKING:
    from whisper_api.engine.model_store import StoredModel


def convert(source: str, out: Path | None, settings: Settings) -> Path:
    """Convert `source` and return the checkpoint's path."""
    from whisper_api.engine.convert import convert_ct2_model, converted_checkpoint
    from whisper_api.engine.locator import locate_model
    from whisper_api.engine.types import ModelSearch

    location = locate_model(
        source,
        ModelSearch(
            cache_dir=settings.cache_dir,
            model_dir=settings.model_dir,
            offline=True,
            download_timeout=settings.download_timeout,
        ),
    )
    if out is not None:
        return convert_ct2_model(location.path, out)
    name = location.path.name if Path(source).expanduser().is_dir() else source
    return converted_checkpoint(location.path, name, settings.cache_dir)


def list_models(settings: Settings) -> list[dict[str, object]]:
    """Every model the server would serve, located offline, with its recorded sha256."""
    from whisper_api.engine.manifest import recorded_sha256
    from whisper_api.engine.registry import ModelRegistry

    registry = ModelRegistry(replace(settings, offline=True), loader=_no_loading)
    rows: list[dict[str, object]] = []
    for name in registry.served_names():
        try:
            location = registry.locate(name)
        except ApiError as exc:
            rows.append({"name": name, "source": None, "path": None, "sha256": None, "error": exc.message})
            continue
        row = {"name": name, "source": location.source, "path": str(location.path)}
        rows.append({**row, "sha256": recorded_sha256(location.path), "multilingual": location.multilingual})
    return rows


def _no_loading(location: object) -> object:
    raise RuntimeError("the command line never loads a model")


def verify_models(settings: Settings, names: list[str]) -> list[tuple[str, str]]:
    """(name, "ok" | "no manifest" | what differs) for each model (all when `names` is empty)."""
    from whisper_api.engine.manifest import verify

    results = []
    for row in list_models(settings):
        if names and row["name"] not in names:
            continue
        if row["path"] is None:
            results.append((str(row["name"]), f"not found: {row['error']}"))
            continue
        problems = verify(Path(str(row["path"])))
        if problems is None:
            results.append((str(row["name"]), "no manifest"))
        elif problems:
            results.append(
                (str(row["name"]), "MISMATCH " + ", ".join(f"{p.file} ({p.problem})" for p in problems))
            )
        else:
            results.append((str(row["name"]), "ok"))
    return results


def pack_model(name: str, out: Path, settings: Settings, *, as_name: str | None, max_mb: float) -> list[Path]:
    """The wheels of the model `name` (as the server locates it), written into `out`."""
    from whisper_api.engine.engines import model_search
    from whisper_api.engine.locator import locate_model
    from whisper_api.engine.wheels import pack

    location = locate_model(name, replace(model_search(settings), offline=True))
    return pack(location.path, as_name or name, out, max_mb=max_mb)


def import_model(path: Path, settings: Settings, name: str | None) -> StoredModel:
    """A CTranslate2 folder or HF snapshot copied, or an openai-whisper `.pt` converted, into the cache."""
    from whisper_api.engine.model_store import import_checkpoint, import_folder

    if path.is_file():
        installed = [row["path"] for row in list_models(settings) if row["path"]]
        tokenizers = [Path(str(p)) for p in installed if Path(str(p)).is_dir()]
        return import_checkpoint(path, settings.cache_dir, name, tokenizers)
    return import_folder(path, settings.cache_dir, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m whisper_api.models", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every model the server can find, its source and sha256 (JSON lines)")
    check = commands.add_parser("verify", help="re-hash models against their manifests")
    check.add_argument("names", nargs="*", help="models to check (default: all)")
    bring = commands.add_parser(
        "import", help="copy a CTranslate2 folder or HF snapshot, or convert a .pt, into the cache"
    )
    bring.add_argument("path", type=Path)
    bring.add_argument("--name", help="the name clients ask for (default: from the folder)")
    wrap = commands.add_parser("pack", help="write a model as pip wheels for an internal mirror")
    wrap.add_argument("model")
    wrap.add_argument("--out", type=Path, default=Path("dist"), help="folder for the wheels (default: dist)")
    wrap.add_argument("--as", dest="as_name", help="install the model under another name")
    wrap.add_argument("--max-wheel-mb", type=float, default=95.0, help="largest wheel, in MiB (default 95)")
    conv = commands.add_parser("convert", help="CTranslate2 model -> openai-whisper checkpoint")
    conv.add_argument("model", help="packaged name (base, tiny.en), WHISPER_MODEL_DIR name, or directory")
    conv.add_argument("--out", type=Path, help="write the checkpoint here instead of the cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings.from_env()
    out = sys.stdout
    try:
        if args.command == "list":
            out.writelines(json.dumps(row) + "\n" for row in list_models(settings))
        elif args.command == "verify":
            results = verify_models(settings, args.names)
            out.writelines(f"{name}: {result}\n" for name, result in results)
            return 0 if all(r in ("ok", "no manifest") for _, r in results) else 2
        elif args.command == "import":
            out.write(f"{import_model(args.path, settings, args.name).path}\n")
        elif args.command == "pack":
            wheels = pack_model(
                args.model, args.out, settings, as_name=args.as_name, max_mb=args.max_wheel_mb
            )
            out.writelines(f"{path}\n" for path in wheels)
        else:
            out.write(f"{convert(args.model, args.out, settings)}\n")
    except ApiError as exc:
        logging.getLogger(__name__).error("%s", exc.message)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
