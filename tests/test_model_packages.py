"""Models as packages: import an HF snapshot folder, verify, and pack -> wheels -> offline pip -> server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import warnings
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
from whisper_api.errors import ModelUnavailableError
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


def random_checkpoint(n_mels: int, audio_layers: int, text_layers: int, n_vocab: int = 51864) -> dict:
    """A small Whisper of the right shapes with random weights (a 128-mel, distilled layout)."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=n_mels, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2,
                           n_audio_layer=audio_layers, n_vocab=n_vocab, n_text_ctx=448, n_text_state=64,
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


# Texts in several scripts for the tokenizer comparisons (Latin with accents, Cyrillic, CJK, Arabic).
TEXTS = (
    "And so, my fellow Americans: ask not what your country can do for you.",
    "Ich bin ein Berliner, und das ist gut so! Ça va très bien, ¿dónde está la biblioteca?",
    "Привет, как дела? 日本語のテキストです。 粵語係一種漢語。 مرحبا بالعالم",
)


@pytest.mark.multilingual
def test_the_99_language_vocabulary_rebuilt_from_base_is_base_own(tmp_path: Path) -> None:
    """The rebuild, asked for base's own size, writes exactly the files the packaged base ships."""
    from whisper_api.engine.vocabulary import rebuild_vocabulary

    base = locate_model("base", ModelSearch(cache_dir=Settings().cache_dir)).path
    config = rebuild_vocabulary(base, 51865, tmp_path)
    assert (tmp_path / "vocabulary.txt").read_bytes() == (base / "vocabulary.txt").read_bytes()
    shipped = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    assert json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8")) == shipped
    assert config == json.loads((base / "config.json").read_text(encoding="utf-8"))


@pytest.mark.multilingual
@pytest.mark.parametrize("languages", [99, 100])
def test_a_rebuilt_vocabulary_numbers_its_special_tokens_as_openai_whisper(
    tmp_path: Path, languages: int
) -> None:
    """large-v3's 100-language vocabulary (51866 tokens) from base's: the words encode as base's
    tokenizer does, every special token has openai-whisper's id (its tiktoken tokenizer of that
    many languages), and config.json's language ids are the language tokens."""
    from tokenizers import Tokenizer
    from whisper.tokenizer import get_tokenizer

    from whisper_api.engine.vocabulary import rebuild_vocabulary

    base = locate_model("base", ModelSearch(cache_dir=Settings().cache_dir)).path
    config = rebuild_vocabulary(base, 51765 + languages + 1, tmp_path)
    ours = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    shipped = Tokenizer.from_file(str(base / "tokenizer.json"))
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=False).ids
        assert ids == shipped.encode(text, add_special_tokens=False).ids
        assert ours.decode(ids) == text
    with warnings.catch_warnings():  # openai-whisper leaves its vocabulary file to the collector
        warnings.simplefilter("ignore", ResourceWarning)
        reference = get_tokenizer(multilingual=True, num_languages=languages)
    vocabulary = (tmp_path / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert len(vocabulary) == 51765 + languages + 1
    for name, token in reference.special_tokens.items():
        names = {name, "<|nocaptions|>"} if name == "<|nospeech|>" else {name}  # renamed with v3
        assert vocabulary[token] in names
        if not name[2].isdigit():  # timestamps are ids past the tokenizer's, as in base's
            assert ours.token_to_id(vocabulary[token]) == token
    assert config["lang_ids"] == sorted(reference.all_language_tokens)
    assert config["suppress_ids_begin"] == [220, reference.eot]


@pytest.mark.multilingual
def test_a_large_v3_shaped_checkpoint_imports_and_decodes(
    tiny: Path, tmp_path: Path, jfk_bytes: bytes
) -> None:
    """No installed model has large-v3's 51866-token vocabulary: its files are rebuilt from base's,
    and faster-whisper detects a language and decodes with them (random weights: words unchecked)."""
    import torch
    from faster_whisper import WhisperModel

    from whisper_api.engine.audio import decode_audio

    base = locate_model("base", ModelSearch(cache_dir=Settings().cache_dir)).path
    torch.save(random_checkpoint(128, 2, 2, n_vocab=51866), tmp_path / "v3-shaped.pt")
    stored = import_checkpoint(tmp_path / "v3-shaped.pt", tmp_path / "cache", None, [tiny, base])
    assert verify(stored.path) == []
    model = WhisperModel(str(stored.path), device="cpu", compute_type="float32", cpu_threads=2)
    assert model.model.n_mels == 128 and model.model.is_multilingual
    assert len(model.supported_languages) == 100
    segments, info = model.transcribe(decode_audio(jfk_bytes).samples, beam_size=1, max_new_tokens=8)
    list(segments)  # decoded to the end with the rebuilt tokenizer
    assert len(info.all_language_probs) == 100 and info.language in model.supported_languages
    (wheel,) = pack(stored.path, "v3-shaped", tmp_path / "wheels", max_mb=95)
    with zipfile.ZipFile(wheel) as packed:
        manifest = json.loads(packed.read(f"whisper_api_model_v3_shaped/{MANIFEST}"))
    assert {"preprocessor_config.json", "tokenizer.json", "vocabulary.txt"} <= set(manifest["files"])


def test_a_checkpoint_without_a_model_of_its_family_is_refused(tiny: Path, tmp_path: Path) -> None:
    import torch

    torch.save(random_checkpoint(128, 2, 2, n_vocab=51866), tmp_path / "v3-shaped.pt")
    with pytest.raises(ModelUnavailableError, match="51866-token vocabulary"):
        import_checkpoint(tmp_path / "v3-shaped.pt", tmp_path / "cache", None, [tiny])


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
