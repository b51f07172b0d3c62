"""An openai-whisper `.pt` checkpoint written as a CTranslate2 model folder, so faster-whisper serves it.

The reverse of engine/convert.py: the same one-to-one names, q/k/v (self-attention) and k/v
(cross-attention) fused again with the zero key bias CTranslate2 expects, stored as float16 in
CTranslate2's binary format (version 6, `WhisperSpec` revision 3). The tokenizer files
(`tokenizer.json`, `vocabulary.txt`) and the token ids in `config.json` are the same for every
model of one vocabulary size, so they come from an installed model of that size, or, for a
multilingual size none has (large-v3's 51866 tokens), are rebuilt from an installed multilingual
model (engine/vocabulary.py).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

from whisper_api.engine.vocabulary import is_multilingual, rebuild_vocabulary, vocabulary_size
from whisper_api.errors import ModelUnavailableError

_FLOAT16, _INT8, _INT16 = 4, 1, 2
_SPEC_REVISION = 3
_BINARY_VERSION = 6
#: WhisperSpec's fixed settings, as CTranslate2's converter writes them (GELU, pre-norm, no ALiBi).
_FLAGS = {
    "decoder/activation": (3, _INT8),
    "decoder/alibi": (0, _INT8),
    "decoder/alignment_heads": (1, _INT16),
    "decoder/alignment_layer": (-1, _INT16),
    "decoder/pre_norm": (1, _INT8),
    "decoder/scale_embeddings": (0, _INT8),
    "decoder/start_from_zero_embedding": (0, _INT8),
}
_SUPPORT = ("tokenizer.json", "vocabulary.txt")


def ct2_variables(checkpoint: dict[str, Any]) -> dict[str, tuple[np.ndarray, int]]:
    """CTranslate2's variables (array, dtype id) for an openai-whisper checkpoint dict."""
    dims = checkpoint["dims"]
    s = {k: v.float().numpy() for k, v in checkpoint["model_state_dict"].items()}
    out: dict[str, tuple[np.ndarray, int]] = {}

    def put(name: str, array: np.ndarray) -> None:
        out[name] = (array.astype(np.float16), _FLOAT16)

    def linear(src: str, dst: str) -> None:
        put(f"{dst}/weight", s[f"{src}.weight"])
        put(f"{dst}/bias", s[f"{src}.bias"])

    def norm(src: str, dst: str) -> None:
        put(f"{dst}/gamma", s[f"{src}.weight"])
        put(f"{dst}/beta", s[f"{src}.bias"])

    def fused(src: str, dst: str, parts: tuple[str, ...]) -> None:
        put(f"{dst}/weight", np.concatenate([s[f"{src}.{p}.weight"] for p in parts]))
        biases = [s.get(f"{src}.{p}.bias", np.zeros(s[f"{src}.{p}.weight"].shape[0])) for p in parts]
        put(f"{dst}/bias", np.concatenate(biases))

    for side, layers in (("encoder", dims["n_audio_layer"]), ("decoder", dims["n_text_layer"])):
        for i in range(layers):
            src, dst = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            fused(f"{src}.attn", f"{dst}/self_attention/linear_0", ("query", "key", "value"))
            linear(f"{src}.attn.out", f"{dst}/self_attention/linear_1")
            norm(f"{src}.attn_ln", f"{dst}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{src}.cross_attn.query", f"{dst}/attention/linear_0")
                fused(f"{src}.cross_attn", f"{dst}/attention/linear_1", ("key", "value"))
                linear(f"{src}.cross_attn.out", f"{dst}/attention/linear_2")
                norm(f"{src}.cross_attn_ln", f"{dst}/attention/layer_norm")
            norm(f"{src}.mlp_ln", f"{dst}/ffn/layer_norm")
            linear(f"{src}.mlp.0", f"{dst}/ffn/linear_0")
            linear(f"{src}.mlp.2", f"{dst}/ffn/linear_1")
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    put("encoder/position_encodings/encodings", s["encoder.positional_embedding"])
    norm("encoder.ln_post", "encoder/layer_norm")
    put("decoder/embeddings/weight", s["decoder.token_embedding.weight"])
    put("decoder/position_encodings/encodings", s["decoder.positional_embedding"])
    norm("decoder.ln", "decoder/layer_norm")
    out["encoder/num_heads"] = (np.array(dims["n_audio_head"], dtype=np.int16), _INT16)
    out["decoder/num_heads"] = (np.array(dims["n_text_head"], dtype=np.int16), _INT16)
    for name, (value, dtype) in _FLAGS.items():
        out[name] = (np.array(value, dtype=np.int8 if dtype == _INT8 else np.int16), dtype)
    return dict(sorted(out.items()))


def write_model_bin(variables: dict[str, tuple[np.ndarray, int]], fh: IO[bytes]) -> None:
    """CTranslate2's `model.bin`: header, named tensors, then the aliases."""

    def string(text: str) -> None:
        data = text.encode("utf-8") + b"\0"
        fh.write(struct.pack("<H", len(data)) + data)

    fh.write(struct.pack("<I", _BINARY_VERSION))
    string("WhisperSpec")
    fh.write(struct.pack("<II", _SPEC_REVISION, len(variables)))
    for name, (array, dtype) in variables.items():
        string(name)
        fh.write(struct.pack("<B", array.ndim) + b"".join(struct.pack("<I", d) for d in array.shape))
        data = np.ascontiguousarray(array).tobytes()
        fh.write(struct.pack("<BI", dtype, len(data)) + data)
    fh.write(struct.pack("<I", 1))
    string("decoder/projection/weight")
    string("decoder/embeddings/weight")


def write_ct2_folder(
    checkpoint: dict[str, Any], heads: list[list[int]], tokenizer_from: Path, out: Path
) -> None:
    """A complete CTranslate2 model folder: weights, config (token ids, alignment heads), tokenizer."""
    dims = checkpoint["dims"]
    out.mkdir(parents=True, exist_ok=True)
    if vocabulary_size(tokenizer_from) == dims["n_vocab"]:
        reference = json.loads((tokenizer_from / "config.json").read_text(encoding="utf-8"))
        for name in _SUPPORT:
            shutil.copyfile(tokenizer_from / name, out / name)
    else:
        reference = rebuild_vocabulary(tokenizer_from, int(dims["n_vocab"]), out)
    with (out / "model.bin").open("wb") as fh:
        write_model_bin(ct2_variables(checkpoint), fh)
    config = {**reference, "alignment_heads": heads}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    if dims["n_mels"] != 80:
        features = {"feature_size": dims["n_mels"], "sampling_rate": 16000, "hop_length": 160, "n_fft": 400}
        (out / "preprocessor_config.json").write_text(json.dumps(features) + "\n", encoding="utf-8")


def tokenizer_source(n_vocab: int, candidates: list[Path]) -> Path:
    """An installed CTranslate2 model with the same vocabulary (its tokenizer is the same), else, for
    a multilingual vocabulary, one with another multilingual vocabulary (its files are rebuilt)."""
    sizes = {
        folder: vocabulary_size(folder)
        for folder in candidates
        if all((folder / name).is_file() for name in (*_SUPPORT, "config.json"))
    }
    same = [folder for folder, size in sizes.items() if size == n_vocab]
    related = [folder for folder, size in sizes.items() if is_multilingual(size) and is_multilingual(n_vocab)]
    if same or related:
        return (same or related)[0]
    family = "multilingual" if is_multilingual(n_vocab) else "English-only"
    raise ModelUnavailableError(
        f"No installed CTranslate2 model has this checkpoint's {n_vocab}-token vocabulary, so its "
        f"tokenizer cannot be written; install or import a CTranslate2 model of the same family "
        f"({family}) first."
    )
