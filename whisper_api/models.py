"""Command line for model files: `python -m whisper_api.models convert <name-or-ct2-dir> [--out x.pt]`.

`convert` turns a CTranslate2 Whisper model (a packaged name such as `base` or `tiny.en`, a name
under WHISPER_MODEL_DIR, or a directory holding model.bin and config.json) into an openai-whisper
checkpoint. Without `--out` it is written to the cache folder the openai-whisper engine reads
(`WHISPER_API_CACHE_DIR/openai-whisper/<name>.pt`), converted once. The path is printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from whisper_api.config import Settings
from whisper_api.errors import ApiError


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m whisper_api.models", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    conv = commands.add_parser("convert", help="CTranslate2 model -> openai-whisper checkpoint")
    conv.add_argument("model", help="packaged name (base, tiny.en), WHISPER_MODEL_DIR name, or directory")
    conv.add_argument("--out", type=Path, help="write the checkpoint here instead of the cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        path = convert(args.model, args.out, Settings.from_env())
    except ApiError as exc:
        logging.getLogger(__name__).error("%s", exc.message)
        return 1
    sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
