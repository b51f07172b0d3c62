"""Find and load openai-whisper checkpoints, offline first.

Order: a `.pt` path; `WHISPER_MODEL_DIR/<name>.pt`; `~/.cache/whisper/<name>.pt` (openai-whisper's
own cache); a CTranslate2 model found offline (a directory, `WHISPER_MODEL_DIR/<name>`, the pip
packages) converted once into the cache; and only then openai-whisper's own download (through
HTTPS_PROXY), unless offline.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import os
import tempfile
import urllib.request
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from whisper_api.engine.convert import ALIGNMENT_HEADS_KEY, converted_checkpoint, heads_dump
from whisper_api.engine.locator import PACKAGED_MODELS, installed_packaged_models, locate_model
from whisper_api.engine.types import ModelLocation, ModelSearch
from whisper_api.errors import ModelNotFoundError, ModelUnavailableError

if TYPE_CHECKING:
    from whisper.model import Whisper

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20

# PyTorch's OpenMP threads spin while they wait for work by default. When the cores are shared
# (other workers, other services), a spinning thread steals the core its partner needs: on the
# 2-core CI machine under load, tiny.en took 23 s for an 11 s clip with 2 spinning threads and
# 2.5 s with sleeping ones. It must be set before torch is first imported, which happens only
# through this module (and `convert`); an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def whisper_cache_dir() -> Path:
    """openai-whisper's download folder: `$XDG_CACHE_HOME/whisper` or `~/.cache/whisper`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper"


def official_urls() -> dict[str, str]:
    """openai-whisper's download URLs by model name (each URL names the file's sha256)."""
    import whisper

    return dict(whisper._MODELS)


def checkpoint_location(name: str, path: Path, source: str) -> ModelLocation:
    return ModelLocation(name, path, source, checkpoint_is_multilingual(path))


def locate_checkpoint(name: str, search: ModelSearch) -> ModelLocation:
    """Resolve `name` to an openai-whisper checkpoint file, or raise saying what was tried."""
    model_dir = search.model_dir
    tried: list[str] = []
    as_path = Path(name).expanduser()
    if as_path.is_file():
        return checkpoint_location(name, as_path.resolve(), "checkpoint")
    if name.endswith(".pt"):
        raise ModelUnavailableError(f"The checkpoint {as_path} does not exist.")
    tried.append(f"a file named {name!r}")

    urls = official_urls()
    filename = Path(urls[name]).name if name in urls else f"{name}.pt"
    for folder, source in ((model_dir, "model_dir"), (whisper_cache_dir(), "whisper-cache")):
        if folder is None:
            continue
        candidate = folder.expanduser() / filename
        if candidate.is_file():
            return checkpoint_location(name, candidate.resolve(), source)
        tried.append(str(candidate))

    has_ct2 = (
        as_path.is_dir()
        or (model_dir is not None and (model_dir.expanduser() / name / "model.bin").is_file())
        or name in installed_packaged_models()
    )
    if has_ct2:
        ct2 = locate_model(name, ModelSearch(search.cache_dir, model_dir, offline=True))
        return checkpoint_location(name, converted_checkpoint(ct2.path, name, search.cache_dir), "converted")
    if name in PACKAGED_MODELS:
        tried.append("pip packages " + ", ".join(PACKAGED_MODELS[name].pip_names))

    if name not in urls:
        raise ModelNotFoundError(name)
    if search.offline:
        raise ModelUnavailableError(_how_to_install(name, tried, "downloads are off (offline mode)"))
    try:
        path = download_checkpoint(urls[name], whisper_cache_dir(), timeout=search.download_timeout)
    except (OSError, ValueError) as exc:
        reason = f"the download failed ({type(exc).__name__})"
        raise ModelUnavailableError(_how_to_install(name, tried, reason)) from exc
    return checkpoint_location(name, path, "download")


def download_checkpoint(url: str, folder: Path, *, timeout: float) -> Path:
    """Download an official checkpoint (urllib honours HTTPS_PROXY) and verify its sha256."""
    expected = url.split("/")[-2]
    target = folder / Path(url).name
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("downloading %s", url)
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}-", dir=folder)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            raise ValueError(f"downloaded {url} does not match its sha256")
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return target


def _how_to_install(name: str, tried: list[str], reason: str) -> str:
    return (
        f"Model {name!r} is not available to openai-whisper: looked for {'; '.join(tried)}, and "
        f"{reason}. Put an openai-whisper checkpoint at WHISPER_MODEL_DIR/{name}.pt or "
        f"~/.cache/whisper/, set WHISPER_MODEL to a .pt path, install a packaged model "
        f"({', '.join(PACKAGED_MODELS)}), or allow downloads through HTTPS_PROXY."
    )


def read_checkpoint(path: Path, *, mmap: bool = False) -> dict[str, Any]:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many kinds (EOFError, RuntimeError, pickle errors)
        raise ModelUnavailableError(
            f"{path} is not a readable openai-whisper checkpoint ({type(exc).__name__}); it may be truncated."
        ) from exc
    if not isinstance(checkpoint, dict) or "dims" not in checkpoint or "model_state_dict" not in checkpoint:
        raise ModelUnavailableError(f"{path} is not an openai-whisper checkpoint (no dims/model_state_dict).")
    return checkpoint


@functools.lru_cache(maxsize=32)
def _checkpoint_vocab(path: Path, mtime_ns: int) -> int:
    return int(read_checkpoint(path, mmap=True)["dims"]["n_vocab"])  # mmap: reads only the header


def official_heads(name: str, dims: dict[str, int]) -> list[list[int]] | None:
    """openai-whisper's alignment heads for an official model name, as `[layer, head]` pairs."""
    import gzip

    import numpy as np
    import whisper

    dump = whisper._ALIGNMENT_HEADS.get(name)
    if dump is None:
        return None
    mask = np.frombuffer(gzip.decompress(base64.b85decode(dump)), dtype=bool)
    mask = mask.reshape(dims["n_text_layer"], dims["n_text_head"])
    return [[int(layer), int(head)] for layer, head in np.argwhere(mask)]


def checkpoint_is_multilingual(path: Path) -> bool:
    """Multilingual checkpoints have more than the 51864 tokens of English-only ones."""
    return checkpoint_vocabulary(path) >= 51865


def checkpoint_vocabulary(path: Path) -> int:
    """The checkpoint's vocabulary size (read from its header once)."""
    return _checkpoint_vocab(path, path.stat().st_mtime_ns)


def load_whisper_model(path: Path, device: str = "cpu", *, name: str | None = None) -> Whisper:
    """Load an openai-whisper model from a checkpoint, with the alignment heads its weights need.

    Heads come from the checkpoint (converted models carry them), else from openai-whisper's table
    for an official file name (`base.pt`) or model name; otherwise openai-whisper's default (all
    heads of the upper half), which shifts word timestamps by up to a few tenths of a second.
    """
    import whisper
    from whisper.model import ModelDimensions, Whisper

    checkpoint = read_checkpoint(path)
    dims = ModelDimensions(**checkpoint["dims"])
    model = Whisper(dims)
    try:
        model.load_state_dict(checkpoint["model_state_dict"])
    except RuntimeError as exc:
        raise ModelUnavailableError(f"{path} does not match openai-whisper's model layout: {exc}") from exc
    heads = checkpoint.get(ALIGNMENT_HEADS_KEY)
    official = next(
        (key for key in (path.stem, name) if key and key in whisper._ALIGNMENT_HEADS),
        None,
    )
    if heads:
        model.set_alignment_heads(heads_dump(heads, dims.n_text_layer, dims.n_text_head))
    elif official is not None:
        model.set_alignment_heads(whisper._ALIGNMENT_HEADS[official])
    else:
        logger.warning("%s names no alignment heads: word timestamps may be off by up to 0.4 s", path)
    _load_encoding(model.is_multilingual, model.num_languages)
    return model.to(device)


def _load_encoding(multilingual: bool, num_languages: int) -> None:
    """Read the tokenizer's vocabulary now (cached by openai-whisper), not in the first request.

    openai-whisper leaves that file open for the garbage collector: the ResourceWarning is known
    and harmless, and silenced here so that warnings-as-errors test runs do not trip on it.
    """
    from whisper.tokenizer import get_encoding

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        # keywords as get_tokenizer passes them: lru_cache keys differ otherwise
        get_encoding(name="multilingual" if multilingual else "gpt2", num_languages=num_languages)
