"""The wheel and the systemd service, installed as IT would: deploy/systemd/install.sh puts the built
wheel into a fresh virtual environment, and the unit's own ExecStart line, run as the unit's user with
its environment file, serves a real transcription through the OpenAI SDK."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from tests.support.server import ROOT, ServerProcess, worker_pids
from tests.text import JFK_REFERENCE, word_errors
from whisper_api.config import Settings

SYSTEMD = ROOT / "deploy" / "systemd"
UNIT_USER = "whisper-api"
KNOWN_ENV = {f.metadata["env"] for f in dataclasses.fields(Settings)}


def _unit(path: Path) -> dict[str, list[str]]:
    """A systemd unit's settings, every value of a repeated key kept in order."""
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and line[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """whisper_api's wheel, built from a copy of the sources (the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "requirements.txt", "requirements-speech.txt", "README.md"):
        shutil.copy(ROOT / name, source)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "whisper_api", source / "whisper_api", ignore=ignore)
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", dist, source],
        check=True,
    )
    (built,) = dist.glob("whisper_api-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Iterator[Path]:
    """A scratch root where install.sh put the venv, the settings and the unit (systemctl skipped)."""
    if os.geteuid() != 0:
        pytest.skip("install.sh creates the service user: run as root (CI does)")
    root = Path(tempfile.mkdtemp(prefix="whisper_api-install-"))
    root.chmod(0o755)  # the service user must reach the venv, as under /opt
    env = {**os.environ, "PREFIX": str(root / "opt"), "ETC_DIR": str(root / "etc"),
           "UNIT_DIR": str(root / "units"), "SYSTEMCTL": "true"}  # fmt: skip
    try:
        subprocess.run(["bash", SYSTEMD / "install.sh", wheel], env=env, check=True, timeout=600)
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def service(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The unit's ExecStart, as its User, with its EnvironmentFile and Environment (tiny.en for speed)."""
    unit = _unit(installed / "units" / "whisper_api.service")
    (env_file,) = unit["EnvironmentFile"]
    env = _env_file(Path(env_file))
    for assignment in unit["Environment"]:
        env.update(pair.split("=", 1) for pair in shlex.split(assignment))
    cache = installed / "cache"  # stands in for CacheDirectory=, which systemd would create
    cache.mkdir()
    shutil.chown(cache, UNIT_USER, UNIT_USER)
    env.update(WHISPER_MODEL="tiny.en", WHISPER_API_CACHE_DIR=str(cache), HOME=str(cache),
               PATH="/usr/bin:/bin")  # fmt: skip
    server = ServerProcess({}, tmp_path_factory.mktemp("service") / "server.log", cwd=Path("/"))
    env["WHISPER_API_BIND"] = f"127.0.0.1:{server.port}"
    (user,) = unit["User"]
    (group,) = unit["Group"]
    (exec_start,) = unit["ExecStart"]
    clean_env = ["env", "-i", *(f"{k}={v}" for k, v in env.items())]
    setpriv = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups"]
    server.command = [*setpriv, *clean_env, *shlex.split(exec_start)]
    server.start(timeout=180)
    try:
        yield server
    finally:
        server.stop()


def test_wheel_holds_every_package_file(wheel: Path) -> None:
    shipped = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "whisper_api").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert shipped <= names, sorted(shipped - names)
    assert "whisper-api = whisper_api.serve:main" in entry_points
    assert "Provides-Extra: speech" in metadata


def test_unit_passes_systemd_analyze_verify(installed: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze missing: scripts/system-packages installs systemd")
    result = subprocess.run(
        ["systemd-analyze", "verify", installed / "units" / "whisper_api.service"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_unit_is_hardened_and_stops_within_the_drain() -> None:
    unit = {key: values[-1] for key, values in _unit(SYSTEMD / "whisper_api.service").items()}
    assert unit["User"] == UNIT_USER
    assert unit["EnvironmentFile"] == "/etc/whisper_api/whisper_api.env"
    for setting, value in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                           "PrivateTmp": "yes"}.items():  # fmt: skip
        assert unit[setting] == value, setting
    assert unit["ReadWritePaths"] == "/var/cache/whisper_api" == f"/var/cache/{unit['CacheDirectory']}"
    assert "WHISPER_API_CACHE_DIR=/var/cache/whisper_api" in unit["Environment"]
    assert unit["MemoryMax"]
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert (unit["KillSignal"], unit["KillMode"]) == ("SIGTERM", "mixed")  # gunicorn's master drains
    grace = int(_env_file(SYSTEMD / "whisper_api.env")["WHISPER_API_GRACEFUL_TIMEOUT"])
    assert grace == Settings().graceful_timeout
    assert int(unit["TimeoutStopSec"]) > grace
    assert (unit["StandardOutput"], unit["Type"]) == ("journal", "notify")


def test_env_example_sets_only_known_settings() -> None:
    env = _env_file(SYSTEMD / "whisper_api.env")
    assert set(env) <= KNOWN_ENV
    assert Settings.from_env(env).log_format == "json"


def test_unit_execstart_as_its_user_transcribes_jfk(service: ServerProcess, audio_dir: Path) -> None:
    assert service.process is not None
    status = Path(f"/proc/{service.process.pid}/status").read_text()
    uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert int(uid) == int(subprocess.check_output(["id", "-u", UNIT_USER]))
    client = openai.OpenAI(base_url=service.base_url + "/v1", api_key="unused", max_retries=0)
    with (audio_dir / "jfk.flac").open("rb") as audio:
        result = client.audio.transcriptions.create(model="tiny.en", file=audio)
    assert word_errors(JFK_REFERENCE, result.text) <= 1, result.text


def test_service_writes_the_json_request_log_to_standard_output(
    service: ServerProcess, audio_dir: Path
) -> None:
    """What journald keeps (StandardOutput=journal): one JSON line per request, without the text."""
    client = openai.OpenAI(base_url=service.base_url + "/v1", api_key="unused", max_retries=0)
    with (audio_dir / "jfk.flac").open("rb") as audio:
        client.audio.transcriptions.create(
            model="tiny.en", file=audio, extra_headers={"X-Request-Id": "install-log-check"}
        )
    log = service.log_path.read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    (request,) = [r for r in records if r.get("request_id") == "install-log-check"]
    assert (request["event"], request["status"], request["model"]) == ("request", 200, "tiny.en")
    assert "country" not in log


def test_reload_replaces_workers_and_keeps_answering(service: ServerProcess) -> None:
    assert service.process is not None
    master = service.process.pid
    before = set(worker_pids(master))
    assert before
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = set(worker_pids(master))
        if now and not now & before:
            break
        time.sleep(0.3)
    else:
        pytest.fail(f"workers not replaced after HUP:\n{service.log()}")
    service.process.poll()
    assert service.process.returncode is None
    # The new worker accepts once its model is loaded; until then requests wait in the listen backlog.
    while not _ready(service):
        assert time.monotonic() < deadline, service.log()
        time.sleep(0.3)


def _ready(server: ServerProcess) -> bool:
    try:
        return requests.get(server.base_url + "/ready", timeout=10).status_code == 200
    except requests.RequestException:
        return False
