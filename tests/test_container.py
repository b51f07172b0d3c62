"""The Dockerfile, built for real with Debian's podman as on a corporate network: the machine's own CA
bundle and pip settings are handed to the build as secrets (this machine reaches PyPI only through a
TLS-inspecting proxy), and must be used by the build yet left in no layer. Running containers fails
here (no cgroups), so the image's command runs under chroot, as its user, from `podman image mount`.

Slow (a full image build on a fresh machine): WHISPER_API_SKIP_CONTAINER=1 skips it locally; CI runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import openai
import pytest

from tests.support.server import ROOT, ServerProcess
from tests.text import JFK_REFERENCE, word_errors
from whisper_api.engine.locator import PACKAGED_MODELS

pytestmark = [
    pytest.mark.container,
    pytest.mark.skipif(
        os.environ.get("WHISPER_API_SKIP_CONTAINER") == "1", reason="WHISPER_API_SKIP_CONTAINER=1"
    ),
]

BASE_IMAGE = "localhost/debian:bookworm"
# Other checkouts may build and mount their own image on this machine at the same time: each run
# tags its own, and mounts and unmounts by image ID, never by a shared tag.
IMAGE = f"localhost/whisper_api:test-{uuid.uuid4().hex[:12]}"
MACHINE_CA = Path(os.environ.get("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt"))


def _podman(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=True, capture_output=True, text=True, **kwargs)


def _pem_bodies(bundle: str) -> set[str]:
    """The base64 body of every certificate in a PEM bundle, whitespace removed."""
    bodies = set()
    for block in bundle.split("-----BEGIN CERTIFICATE-----")[1:]:
        bodies.add("".join(block.split("-----END CERTIFICATE-----")[0].split()))
    return bodies


@pytest.fixture(scope="module")
def base_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian bookworm from debootstrap (no registry here), imported once and kept."""
    if os.geteuid() != 0 or shutil.which("podman") is None or shutil.which("debootstrap") is None:
        pytest.fail("needs root, podman and debootstrap (scripts/system-packages installs them)")
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE]).returncode != 0:
        root = tmp_path_factory.mktemp("debootstrap")
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", root], check=True,
                       capture_output=True, timeout=900)  # fmt: skip
        with subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE) as tar:
            subprocess.run(["podman", "import", "-", BASE_IMAGE], stdin=tar.stdout, check=True)
        assert tar.returncode == 0
        shutil.rmtree(root, ignore_errors=True)
    return BASE_IMAGE


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """The machine's CA bundle and a pip config standing in for the corporate ones; the marker must
    never reach the image."""
    folder = tmp_path_factory.mktemp("secrets")
    marker = f"corporate-secret-{uuid.uuid4().hex}"
    index = subprocess.run(["pip", "config", "get", "global.index-url"], capture_output=True, text=True)
    index_url = index.stdout.strip() if index.stdout.strip().startswith("http") else "https://pypi.org/simple"
    pip_conf = folder / "pip.conf"
    pip_conf.write_text(f"# {marker}\n[global]\nindex-url = {index_url}\ntimeout = 120\n")
    ca_bundle = folder / "ca.pem"
    shutil.copy(MACHINE_CA, ca_bundle)
    return {"pip_conf": pip_conf, "ca_bundle": ca_bundle, "marker": marker}


@pytest.fixture(scope="module")
def image(
    base_image: str, secrets: dict[str, Path | str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The image's ID (layers stay in podman's cache for the next run; the run's tag goes)."""
    iidfile = tmp_path_factory.mktemp("image") / "iid"
    _podman(
        "build", "--isolation", "chroot", "--network", "host", "--format", "docker",
        "--build-arg", f"BASE_IMAGE={base_image}",
        "--secret", f"id=ca_bundle,src={secrets['ca_bundle']}",
        "--secret", f"id=pip_conf,src={secrets['pip_conf']}",
        "--iidfile", str(iidfile), "-t", IMAGE, str(ROOT),
        timeout=1800,
    )  # fmt: skip
    try:
        yield iidfile.read_text().strip()
    finally:
        subprocess.run(["podman", "untag", IMAGE], capture_output=True)


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    (inspected,) = json.loads(_podman("image", "inspect", image).stdout)
    return inspected["Config"]


@pytest.fixture(scope="module")
def mounted(image: str) -> Iterator[Path]:
    path = Path(_podman("image", "mount", image).stdout.strip())
    try:
        yield path
    finally:
        subprocess.run(["podman", "image", "unmount", image], capture_output=True)


def test_image_runs_as_an_unprivileged_user(config: dict[str, Any], mounted: Path) -> None:
    user = config["User"]
    passwd = [line.split(":") for line in (mounted / "etc/passwd").read_text().splitlines()]
    uids = {fields[0]: int(fields[2]) for fields in passwd}
    assert user == "whisper"
    assert uids[user] >= 1000


def test_image_holds_both_packaged_models_verified(config: dict[str, Any], mounted: Path) -> None:
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["WHISPER_API_OFFLINE"] == "1"
    for model in PACKAGED_MODELS.values():
        folder = mounted / env["WHISPER_API_CACHE_DIR"].lstrip("/") / "models" / model.name
        digest = hashlib.sha256()
        with (folder / "model.bin").open("rb") as weights:
            while chunk := weights.read(1 << 20):
                digest.update(chunk)
        assert digest.hexdigest() == model.sha256 == (folder / ".sha256").read_text().strip()
        assert (folder / "model.bin").stat().st_uid == 0  # the server's user cannot change them


def test_no_ca_pip_config_or_secret_left_in_any_layer(
    image: str, config: dict[str, Any], secrets: dict[str, Path | str], tmp_path: Path
) -> None:
    """Every layer's files (a file deleted later still sits in its layer), the history and the config."""
    marker = str(secrets["marker"]).encode()
    # Certificates only the machine trusts (the proxy's CA): the public ones also ship inside certifi.
    corporate = _pem_bodies(MACHINE_CA.read_text()) - _pem_bodies(Path(certifi.where()).read_text())
    assert corporate, "no certificate beyond the public ones: nothing would be tested"
    needles = [marker, *(body[64:192].encode() for body in corporate)]
    history = _podman("history", "--no-trunc", "--format", "{{.CreatedBy}}", image).stdout
    assert "ca.pem" not in history and "pip.conf" not in history and str(secrets["marker"]) not in history
    assert not [
        e for e in config["Env"] if e.startswith(("PIP_CERT", "PIP_CONFIG_FILE", "PIP_INDEX", "PIP_EXTRA"))
    ]
    layout = tmp_path / "oci"
    _podman("save", "--format", "oci-dir", "-o", str(layout), image, timeout=600)
    found: list[str] = []
    for blob in (layout / "blobs" / "sha256").iterdir():
        if not tarfile.is_tarfile(blob):
            continue  # the manifest and the config (JSON)
        with tarfile.open(blob, "r:*") as layer:
            for member in layer:
                name = member.name.lstrip("./")
                if name.startswith("run/secrets/") and member.isfile() or name.endswith("pip.conf"):
                    found.append(name)
                if not member.isfile() or member.size > 64 << 20:
                    continue  # model weights and libraries: no certificate hides inside them
                content = layer.extractfile(member).read()  # type: ignore[union-attr]
                found.extend(f"{name}: secret content" for needle in needles if needle in content)
    assert not found


def test_image_command_answers_jfk_through_the_sdk(
    config: dict[str, Any], mounted: Path, audio_dir: Path, tmp_path: Path
) -> None:
    """The image's CMD, as its user, in a private mount namespace: /dev, /proc and a fresh /tmp, the
    image itself read-only (as readOnlyRootFilesystem in Kubernetes)."""
    server = ServerProcess({}, tmp_path / "server.log", cwd=Path("/"))
    env = [*config["Env"], f"WHISPER_API_BIND=127.0.0.1:{server.port}", "WHISPER_API_WORKERS=1"]
    command = " ".join([*(config.get("Entrypoint") or []), *config["Cmd"]])
    root = str(mounted)
    script = (
        f"mount --rbind /dev {root}/dev && mount -t proc proc {root}/proc && mount -t tmpfs tmpfs {root}/tmp"
        f" && exec chroot --userspec={config['User']}:{config['User']} {root}"
        f" /usr/bin/env -i {' '.join(env)} sh -c 'cd {config['WorkingDir']} && exec {command}'"
    )
    server.command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    server.start(timeout=300)
    try:
        client = openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0)
        with (audio_dir / "jfk.flac").open("rb") as audio:
            result = client.audio.transcriptions.create(model="whisper-1", file=audio)
        assert word_errors(JFK_REFERENCE, result.text) <= 1, result.text
    finally:
        server.stop()
