"""Convert a CTranslate2 Whisper `model.bin` into an openai-whisper checkpoint, exactly.

The CTranslate2 file (binary version 6, little-endian) is a list of named tensors; openai-whisper
wants a `torch.save`d dict of `dims` and `model_state_dict`. The names map one to one, except that
CTranslate2 fuses q/k/v (self-attention) and k/v (cross-attention) and stores a zero key bias that
openai-whisper's bias-free key projection must not receive. The alignment heads (which attention
heads follow the audio, needed by word timestamps) live in config.json: they are kept next to the
weights in the checkpoint dict and applied with `set_alignment_heads` after loading.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from whisper_api.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

SUPPORTED_BINARY_VERSIONS = (5, 6)
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),  # bfloat16: raw bits, widened to float32 below
}
_BFLOAT16 = 5
#: Key in the checkpoint dict holding `[layer, head]` pairs; openai-whisper ignores unknown keys.
ALIGNMENT_HEADS_KEY = "alignment_heads"
_CHUNK = 1 << 20


class ModelConversionError(ModelUnavailableError):
    """A CTranslate2 model cannot be turned into an openai-whisper checkpoint."""


@dataclass(frozen=True)
class Ct2Model:
    """The tensors and scalars of a CTranslate2 model file, by name."""

    spec: str
    variables: dict[str, np.ndarray]


def read_ct2_model(path: Path) -> Ct2Model:
    """Read a CTranslate2 `model.bin`; a short read means the file is truncated."""
    try:
        with path.open("rb") as fh:
            return _read(fh, path)
    except OSError as exc:
        raise ModelConversionError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read(fh: IO[bytes], path: Path) -> Ct2Model:
    def take(n: int) -> bytes:
        data = fh.read(n)
        if len(data) != n:
            raise ModelConversionError(f"{path} is truncated (wanted {n} more bytes, got {len(data)}).")
        return data

    def number(fmt: str) -> int:
        return struct.unpack("<" + fmt, take(struct.calcsize(fmt)))[0]

    def string() -> str:
        return take(number("H"))[:-1].decode("utf-8")

    version = number("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ModelConversionError(f"{path}: unsupported CTranslate2 binary version {version}.")
    spec = string()
    if spec != "WhisperSpec":
        raise ModelConversionError(f"{path} holds a {spec!r}, not a Whisper model.")
    number("I")  # spec revision
    variables: dict[str, np.ndarray] = {}
    for _ in range(number("I")):
        name = string()
        shape = tuple(number("I") for _ in range(number("B")))
        dtype_id = number("B")
        size = number("I")
        if dtype_id not in _DTYPES:
            raise ModelConversionError(f"{path}: variable {name} has unknown dtype {dtype_id}.")
        array = np.frombuffer(take(size), dtype=_DTYPES[dtype_id]).reshape(shape)
        if dtype_id == _BFLOAT16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = array
    for _ in range(number("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if fh.read(1):
        raise ModelConversionError(f"{path} has trailing bytes after its last variable.")
    return Ct2Model(spec, variables)


def checkpoint_from_ct2(model: Ct2Model, alignment_heads: list[list[int]] | None) -> dict[str, Any]:
    """The openai-whisper checkpoint dict (`dims`, `model_state_dict`) for a CTranslate2 model."""
    import torch

    v = model.variables
    if any(name.endswith("weight_scale") for name in v):
        raise ModelConversionError(
            "the CTranslate2 model is quantized (int8); convert one stored as float16 or float32."
        )
    state: dict[str, np.ndarray] = {}
    for side, prefix in (("encoder", "encoder"), ("decoder", "decoder")):
        n_layers = _count_layers(v, side)
        for i in range(n_layers):
            src, dst = f"{side}/layer_{i}", f"{prefix}.blocks.{i}"
            _self_attention(state, v, f"{src}/self_attention", f"{dst}.attn", f"{dst}.attn_ln")
            if side == "decoder":
                _cross_attention(state, v, f"{src}/attention", f"{dst}.cross_attn", f"{dst}.cross_attn_ln")
            _norm(state, v, f"{src}/ffn/layer_norm", f"{dst}.mlp_ln")
            _linear(state, v, f"{src}/ffn/linear_0", f"{dst}.mlp.0")
            _linear(state, v, f"{src}/ffn/linear_1", f"{dst}.mlp.2")
    _linear(state, v, "encoder/conv1", "encoder.conv1")
    _linear(state, v, "encoder/conv2", "encoder.conv2")
    state["encoder.positional_embedding"] = _get(v, "encoder/position_encodings/encodings")
    _norm(state, v, "encoder/layer_norm", "encoder.ln_post")
    state["decoder.token_embedding.weight"] = _get(v, "decoder/embeddings/weight")
    state["decoder.positional_embedding"] = _get(v, "decoder/position_encodings/encodings")
    _norm(state, v, "decoder/layer_norm", "decoder.ln")

    conv1 = state["encoder.conv1.weight"]
    token_embedding = state["decoder.token_embedding.weight"]
    dims = {
        "n_mels": int(conv1.shape[1]),
        "n_audio_ctx": int(state["encoder.positional_embedding"].shape[0]),
        "n_audio_state": int(conv1.shape[0]),
        "n_audio_head": int(_get(v, "encoder/num_heads").item()),
        "n_audio_layer": _count_layers(v, "encoder"),
        "n_vocab": int(token_embedding.shape[0]),
        "n_text_ctx": int(state["decoder.positional_embedding"].shape[0]),
        "n_text_state": int(token_embedding.shape[1]),
        "n_text_head": int(_get(v, "decoder/num_heads").item()),
        "n_text_layer": _count_layers(v, "decoder"),
    }
    checkpoint: dict[str, Any] = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.array(a)) for k, a in state.items()},
    }
    if alignment_heads:
        checkpoint[ALIGNMENT_HEADS_KEY] = [[int(layer), int(head)] for layer, head in alignment_heads]
    return checkpoint


def _get(v: dict[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return v[name]
    except KeyError:
        raise ModelConversionError(f"the CTranslate2 model has no variable {name}.") from None


def _count_layers(v: dict[str, np.ndarray], side: str) -> int:
    n = 0
    while f"{side}/layer_{n}/ffn/linear_0/weight" in v:
        n += 1
    if n == 0:
        raise ModelConversionError(f"the CTranslate2 model has no {side} layers.")
    return n


def _linear(state: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str) -> None:
    state[f"{dst}.weight"] = _get(v, f"{src}/weight")
    state[f"{dst}.bias"] = _get(v, f"{src}/bias")


def _norm(state: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str) -> None:
    state[f"{dst}.weight"] = _get(v, f"{src}/gamma")
    state[f"{dst}.bias"] = _get(v, f"{src}/beta")


def _split_fused(
    state: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str, names: tuple[str, ...]
) -> None:
    """Split q/k/v fused along the output dimension; the key has no bias in openai-whisper."""
    weights = np.split(_get(v, f"{src}/weight"), len(names), axis=0)
    biases = np.split(_get(v, f"{src}/bias"), len(names), axis=0)
    for part, weight, bias in zip(names, weights, biases, strict=True):
        state[f"{dst}.{part}.weight"] = weight
        if part == "key":
            if np.any(bias != 0):
                raise ModelConversionError(f"{src} has a non-zero key bias; openai-whisper has none.")
            continue
        state[f"{dst}.{part}.bias"] = bias


def _self_attention(
    state: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str, norm: str
) -> None:
    _split_fused(state, v, f"{src}/linear_0", dst, ("query", "key", "value"))
    _linear(state, v, f"{src}/linear_1", f"{dst}.out")
    _norm(state, v, f"{src}/layer_norm", norm)


def _cross_attention(
    state: dict[str, np.ndarray], v: dict[str, np.ndarray], src: str, dst: str, norm: str
) -> None:
    _linear(state, v, f"{src}/linear_0", f"{dst}.query")
    _split_fused(state, v, f"{src}/linear_1", dst, ("key", "value"))
    _linear(state, v, f"{src}/linear_2", f"{dst}.out")
    _norm(state, v, f"{src}/layer_norm", norm)


def alignment_heads_of(model_dir: Path) -> list[list[int]] | None:
    """`[layer, head]` pairs from a CTranslate2 model's config.json, if it has them."""
    config = model_dir / "config.json"
    if not config.is_file():
        return None
    heads = json.loads(config.read_text(encoding="utf-8")).get("alignment_heads")
    return [[int(layer), int(head)] for layer, head in heads] if heads else None


def verify_sha256(model_dir: Path) -> None:
    """Check model.bin against the `.sha256` stamp that packaged models are assembled with."""
    stamp = model_dir / ".sha256"
    if not stamp.is_file():
        return
    expected = stamp.read_text().split()[0]
    digest = hashlib.sha256()
    with (model_dir / "model.bin").open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        raise ModelConversionError(
            f"{model_dir / 'model.bin'} does not match its sha256 {expected} (got {digest.hexdigest()}); "
            "the weights are damaged or were replaced."
        )


def convert_ct2_model(model_dir: Path, out: Path) -> Path:
    """Write the openai-whisper checkpoint for the CTranslate2 model in `model_dir` to `out`."""
    import torch

    if not (model_dir / "model.bin").is_file():
        raise ModelConversionError(f"{model_dir} has no CTranslate2 model.bin.")
    verify_sha256(model_dir)
    checkpoint = checkpoint_from_ct2(read_ct2_model(model_dir / "model.bin"), alignment_heads_of(model_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(checkpoint, fh)
        os.chmod(staging, 0o644)
        os.replace(staging, out)  # atomic: a concurrent worker sees the old file or the new one
    finally:
        if os.path.exists(staging):
            os.unlink(staging)
    return out


def _source_stamp(model_dir: Path) -> dict[str, Any]:
    weights = (model_dir / "model.bin").stat()
    stamp = model_dir / ".sha256"
    return {
        "source": str(model_dir.resolve()),
        "size": weights.st_size,
        "mtime_ns": weights.st_mtime_ns,
        "sha256": stamp.read_text().split()[0] if stamp.is_file() else None,
    }


def converted_checkpoint(model_dir: Path, name: str, cache_dir: Path) -> Path:
    """The cached openai-whisper checkpoint of a CTranslate2 model directory, converted once."""
    target = cache_dir / "openai-whisper" / f"{name.replace('/', '--')}.pt"
    meta = target.with_name(target.name + ".json")
    stamp = _source_stamp(model_dir)
    if target.is_file() and meta.is_file():
        try:
            if json.loads(meta.read_text()) == stamp:
                return target
        except ValueError:
            pass
    logger.info("converting CTranslate2 model %s into an openai-whisper checkpoint at %s", name, target)
    convert_ct2_model(model_dir, target)
    staging = meta.with_name(f".{meta.name}.{os.getpid()}")
    staging.write_text(json.dumps(stamp))
    os.replace(staging, meta)
    return target


def heads_dump(heads: list[list[int]], n_text_layer: int, n_text_head: int) -> bytes:
    """The base85 gzip mask `Whisper.set_alignment_heads` takes, from `[layer, head]` pairs."""
    mask = np.zeros((n_text_layer, n_text_head), dtype=bool)
    for layer, head in heads:
        mask[layer, head] = True
    return base64.b85encode(gzip.compress(mask.tobytes()))
