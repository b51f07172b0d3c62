"""The admin API: its own keys, and actions seen by both workers of a real 2-worker server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.fakes import fake_loader
from tests.support.server import ServerProcess, worker_pids
from whisper_api.config import Settings
from whisper_api.engine.locator import locate_model
from whisper_api.engine.types import ModelSearch
from whisper_api.web import create_app

ADMIN = {"Authorization": "Bearer admin-secret-key-1"}
USER = {"Authorization": "Bearer sk-user-key-0001"}
ADMIN_REASON = "admin"

# --- keys (in process, fake transcriber) -------------------------------------------------------------


@pytest.fixture
def guarded(tmp_path: Path):  # noqa: ANN201 - FlaskClient
    settings = Settings(model="base", api_keys=("sk-user-key-0001",), admin_keys=("admin-secret-key-1",),
                        control_dir=tmp_path)  # fmt: skip
    return create_app(settings, loader=fake_loader({})).test_client()


def test_admin_api_is_off_without_admin_keys() -> None:
    client = create_app(Settings(model="base"), loader=fake_loader({})).test_client()
    response = client.get("/admin/models", headers=ADMIN)
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "admin_disabled"


@pytest.mark.parametrize(("headers", "code"), [({}, None), (USER, "invalid_api_key")])
def test_admin_api_needs_the_admin_key_not_a_user_key(guarded, headers: dict, code: str | None) -> None:  # noqa: ANN001
    response = guarded.post("/admin/models/base/load", headers=headers)
    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == code and set(error) == {"message", "type", "param", "code"}


def test_the_admin_key_is_not_a_user_key(guarded) -> None:  # noqa: ANN001
    assert guarded.get("/v1/models", headers=ADMIN).status_code == 401
    assert guarded.get("/v1/models", headers=USER).status_code == 200


def test_unknown_models_and_actions_are_404(guarded) -> None:  # noqa: ANN001
    assert guarded.post("/admin/models/banana/load", headers=ADMIN).status_code == 404
    assert guarded.post("/admin/models/base/explode", headers=ADMIN).status_code == 404


# --- the real server, two workers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("admin")
    tiny = locate_model("tiny.en", ModelSearch(cache_dir=Settings().cache_dir))
    (folder / "models").mkdir()
    (folder / "models" / "tiny-copy").symlink_to(tiny.path)
    env = {
        "WHISPER_MODEL": "tiny.en",
        "WHISPER_MODEL_DIR": str(folder / "models"),
        "WHISPER_API_MODELS": "tiny-copy",
        "WHISPER_API_WORKERS": "2",
        "WHISPER_API_ADMIN_KEYS": "admin-secret-key-1",
        "WHISPER_API_CPU_THREADS": "1",
    }
    server = ServerProcess(env, folder / "server.log").start()
    try:
        give_up = time.monotonic() + 120
        while len(listing(server)[0]["workers"]) < 2 and time.monotonic() < give_up:
            time.sleep(0.3)
        yield server
    finally:
        server.stop()


def listing(server: ServerProcess) -> list[dict]:
    response = requests.get(server.base_url + "/admin/models", headers=ADMIN, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def act(server: ServerProcess, name: str, action: str) -> dict:
    response = requests.post(f"{server.base_url}/admin/models/{name}/{action}", headers=ADMIN, timeout=180)
    assert response.status_code == 200, response.text
    return response.json()


def model_in(models: list[dict], name: str) -> dict:
    return next(m for m in models if m["id"] == name)


def test_listing_shows_each_worker_and_where_models_come_from(two_workers: ServerProcess) -> None:
    tiny = model_in(listing(two_workers), "tiny.en")
    assert tiny["engine"] == "faster-whisper" and tiny["source"] == "package" and len(tiny["sha256"]) == 64
    assert sorted(w["pid"] for w in tiny["workers"]) == sorted(worker_pids(two_workers.process.pid))
    assert all(w["loaded"] and w["pinned"] and w["ram_mb"] > 0 for w in tiny["workers"])


def test_load_pin_and_unload_reach_both_workers(two_workers: ServerProcess) -> None:
    loaded = act(two_workers, "tiny-copy", "load")
    assert [w["result"] for w in loaded["workers"]] == ["loaded", "loaded"]
    assert all(w["loaded"] for w in model_in(listing(two_workers), "tiny-copy")["workers"])

    pinned = act(two_workers, "tiny-copy", "pin")
    assert [w["pinned"] for w in pinned["workers"]] == [True, True]

    unloaded = act(two_workers, "tiny-copy", "unload")
    assert [(w["result"], w["loaded"]) for w in unloaded["workers"]] == [("unloaded", False)] * 2
    assert not any(w["loaded"] for w in model_in(listing(two_workers), "tiny-copy")["workers"])

    text = requests.get(two_workers.base_url + "/metrics", timeout=10).text
    unloads = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "whisper_api_model_unloads_total"
        and s.labels == {"model": "tiny-copy", "reason": "admin"}
    ]
    assert sum(unloads) == 2
