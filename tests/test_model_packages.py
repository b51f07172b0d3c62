"""Models as packages: import an HF snapshot folder, verify, and pack -> wheels -> offline pip -> server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import openai
import pytest

from tests.support.server import ROOT, ServerProcess
from tests.text import JFK_REFERENCE, word_errors
from whisper_api.config import Settings
from whisper_api.engine.engines import loader_for, model_search
from whisper_api.engine.locator import locate_model
from whisper_api.engine.manifest import MANIFEST, file_sha256, verify
from whisper_api.engine.model_store import import_checkpoint, import_folder
from whisper_api.engine.types import ModelSearch, TranscriptionOptions, collect
from whisper_api.engine.wheels import pack
from whisper_api.models import main as models_cli

MIB = 1 << 20


@pytest.fixture(scope="module")
def tiny() -> Path:
    return locate_model("tiny.en", ModelSearch(cache_dir=Settings().cache_dir)).path


def hf_snapshot(tiny: Path, root: Path) -> Path:
    """tiny.en laid out as a Hugging Face cache entry: snapshot files are links to blobs."""
    entry = root / "models--Systran--faster-whisper-tiny.en"
    (entry / "blobs").mkdir(parents=True)
    snapshot = entry / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    for item in ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt"):
        blob = entry / "blobs" / file_sha256(tiny / item)
        blob.symlink_to(tiny / item)
        (snapshot / item).symlink_to(os.path.relpath(blob, snapshot))
    (entry / "refs").mkdir()
    (entry / "refs" / "main").write_text("0123abcd")
    return entry


def transcribe_jfk(name: str, cache_dir: Path, audio: bytes) -> str:
    from whisper_api.engine.audio import decode_audio

    settings = Settings(model=name, cache_dir=cache_dir, offline=True, device="cpu", cpu_threads=2)
    location = locate_model(name, model_search(settings))
    transcriber = loader_for(settings)(location)
    return collect(*transcriber.transcribe(decode_audio(audio), TranscriptionOptions(beam_size=1))).text


def test_an_hf_snapshot_folder_imports_with_a_manifest_and_gives_the_same_words(
    tiny: Path, tmp_path: Path, jfk_bytes: bytes
) -> None:
    stored = import_folder(hf_snapshot(tiny, tmp_path / "hub"), tmp_path / "cache", name="hf-tiny")
    assert stored.source == "hf-snapshot" and verify(stored.path) == []
    assert not (stored.path / "model.bin").is_symlink()
    location = locate_model("hf-tiny", ModelSearch(cache_dir=tmp_path / "cache", offline=True))
    assert location.source == "imported"
    imported = transcribe_jfk("hf-tiny", tmp_path / "cache", jfk_bytes)
    assert imported == transcribe_jfk("tiny.en", Settings().cache_dir, jfk_bytes)
    assert word_errors(JFK_REFERENCE, imported) == 0


def test_the_snapshot_name_comes_from_the_repository(tiny: Path, tmp_path: Path) -> None:
    stored = import_folder(hf_snapshot(tiny, tmp_path / "hub") / "snapshots" / "0123abcd", tmp_path / "cache")
    assert stored.name == "tiny.en"


def test_verify_names_a_file_that_changed(tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    stored = import_folder(tiny, tmp_path / "cache", name="mine")
    config = stored.path / "config.json"
    config.write_text(config.read_text().replace("{", "{ ", 1))
    assert [(m.file, m.problem) for m in verify(stored.path)] == [("config.json", "size")]
    os.environ["WHISPER_API_CACHE_DIR"] = str(tmp_path / "cache")
    os.environ["WHISPER_API_MODELS"] = "mine"
    try:
        assert models_cli(["verify", "mine"]) == 2
    finally:
        del os.environ["WHISPER_API_CACHE_DIR"], os.environ["WHISPER_API_MODELS"]
    assert "mine: MISMATCH config.json (size)" in capsys.readouterr().out


def test_wheels_stay_under_the_size_limit_and_carry_the_manifest(tiny: Path, tmp_path: Path) -> None:
    wheels = pack(tiny, "packed-tiny", tmp_path, max_mb=30)
    assert len(wheels) == 3 and all(w.stat().st_size < 30 * MIB for w in wheels)
    with zipfile.ZipFile(wheels[0]) as first:
        manifest = json.loads(first.read(f"whisper_api_model_packed_tiny/{MANIFEST}"))
        metadata = first.read("whisper_api_model_packed_tiny-1.0.0.dist-info/METADATA").decode()
        entry_points = first.read("whisper_api_model_packed_tiny-1.0.0.dist-info/entry_points.txt").decode()
    assert manifest["files"]["model.bin"]["sha256"] == file_sha256(tiny / "model.bin")
    assert "Requires-Dist: whisper-api-model-packed-tiny-part3==1.0.0" in metadata
    assert "packed-tiny = whisper_api_model_packed_tiny" in entry_points


def test_pack_pip_install_offline_and_serve(tmp_path: Path, jfk_bytes: bytes) -> None:
    """The round trip: `pack tiny.en` -> wheels -> pip --no-index into a fresh venv -> a server."""
    out = tmp_path / "wheels"
    assert (
        models_cli(["pack", "tiny.en", "--as", "packed-tiny", "--out", str(out), "--max-wheel-mb", "40"]) == 0
    )
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(fresh)], check=True)
    python = fresh / "bin" / "python"
    # The server's own dependencies come from this environment; the model only from the wheels.
    site = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    )
    Path(site.decode().strip(), "server-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--find-links"]
    subprocess.run([*pip, str(out), "whisper-api-model-packed-tiny"], check=True, capture_output=True)

    env = {"WHISPER_MODEL": "packed-tiny", "WHISPER_API_CACHE_DIR": str(tmp_path / "cache"),
           "WHISPER_API_OFFLINE": "1"}  # fmt: skip
    command = [str(python), "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
    server = ServerProcess(env, tmp_path / "server.log", command=command, cwd=ROOT).start(timeout=240)
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-local", max_retries=0)
        assert "packed-tiny" in [m.id for m in client.models.list()]
        text = client.audio.transcriptions.create(model="packed-tiny", file=("jfk.flac", jfk_bytes)).text
    finally:
        server.stop()
    assert word_errors(JFK_REFERENCE, text) == 0
    listed = subprocess.run(
        [python, "-m", "whisper_api.models", "verify", "packed-tiny"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert listed.returncode == 0 and "packed-tiny: ok" in listed.stdout, listed.stderr


# --- openai-whisper checkpoints into CTranslate2 ------------------------------------------------------


def random_checkpoint(n_mels: int, audio_layers: int, text_layers: int) -> dict:
    """A small Whisper of the right shapes with random weights (a 128-mel, distilled layout)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=n_mels, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                           n_audio_layer=audio_layers, n_vocab=51864, n_text_ctx=448, n_text_state=64,
                           n_text_head=2, n_text_layer=text_layers)  # fmt: skip
    torch.manual_seed(0)
    state = Whisper(dims).state_dict()
    for tensor in state.values():  # some are left uninitialised (torch.empty)
        tensor.normal_(0, 0.02)
    return {"dims": dims.__dict__, "model_state_dict": state}


@pytest.mark.parametrize(("n_mels", "audio_layers", "text_layers"), [(80, 2, 2), (128, 4, 2)])
def test_checkpoint_to_ct2_and_back_keeps_every_tensor(
    tmp_path: Path, n_mels: int, audio_layers: int, text_layers: int
) -> None:
    from whisper_api.engine.convert import checkpoint_from_ct2, read_ct2_model
    from whisper_api.engine.to_ct2 import ct2_variables, write_model_bin

    checkpoint = random_checkpoint(n_mels, audio_layers, text_layers)
    with (tmp_path / "model.bin").open("wb") as fh:
        write_model_bin(ct2_variables(checkpoint), fh)
    back = checkpoint_from_ct2(read_ct2_model(tmp_path / "model.bin"), None)
    assert back["dims"] == checkpoint["dims"]
    for name, tensor in checkpoint["model_state_dict"].items():
        expected = tensor.half().float().numpy()
        assert (back["model_state_dict"][name].float().numpy() == expected).all(), name


def test_a_128_mel_distilled_checkpoint_imports_and_opens(tiny: Path, tmp_path: Path) -> None:
    import torch
    from faster_whisper import WhisperModel

    torch.save(random_checkpoint(128, 4, 2), tmp_path / "distil-128.pt")
    stored = import_checkpoint(tmp_path / "distil-128.pt", tmp_path / "cache", None, [tiny])
    assert stored.name == "distil-128" and verify(stored.path) == []
    model = WhisperModel(str(stored.path), device="cpu", compute_type="float32", cpu_threads=1)
    assert model.feature_extractor.mel_filters.shape[0] == 128 and model.model.n_mels == 128


@pytest.mark.multilingual
def test_a_pt_made_from_base_imports_and_gives_the_same_words(tmp_path: Path, jfk_bytes: bytes) -> None:
    base = locate_model("base", ModelSearch(cache_dir=Settings().cache_dir)).path
    pt = tmp_path / "base.pt"
    assert models_cli(["convert", str(base), "--out", str(pt)]) == 0
    stored = import_checkpoint(pt, tmp_path / "cache", "base-from-pt", [base])
    assert stored.source == "checkpoint" and verify(stored.path) == []
    imported = transcribe_jfk("base-from-pt", tmp_path / "cache", jfk_bytes)
    assert imported == transcribe_jfk("base", Settings().cache_dir, jfk_bytes)
    assert word_errors(JFK_REFERENCE, imported) == 0
