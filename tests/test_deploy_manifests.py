"""The shipped Kubernetes manifests and Compose files parse and say what the server needs."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.server import ROOT
from whisper_api.config import Settings

K8S = ROOT / "deploy" / "kubernetes"
KNOWN_ENV = {f.metadata["env"] for f in dataclasses.fields(Settings)}
GRACEFUL_TIMEOUT = Settings().graceful_timeout  # what gunicorn waits after SIGTERM


def _load(path: Path) -> dict[str, Any]:
    (document,) = list(yaml.safe_load_all(path.read_text()))
    return document


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


@pytest.fixture(params=["deployment.yaml", "deployment-gpu.yaml"])
def deployment(request: pytest.FixtureRequest) -> dict[str, Any]:
    return _load(K8S / request.param)


def test_deployment_probes_use_ready_and_health(deployment: dict[str, Any]) -> None:
    container = _container(deployment)
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # time to load a model


def test_deployment_selects_its_own_pods_and_declares_resources(deployment: dict[str, Any]) -> None:
    spec = deployment["spec"]
    assert deployment["kind"] == "Deployment"
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    container = _container(deployment)
    assert container["image"] == "whisper_api:latest"
    assert container["ports"] == [{"name": "http", "containerPort": 8000}]
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert "memory" in container["resources"]["limits"]
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > GRACEFUL_TIMEOUT
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_deployment_sets_only_settings_the_server_knows(deployment: dict[str, Any]) -> None:
    env = _env(_container(deployment))
    assert set(env) <= KNOWN_ENV
    Settings.from_env(env)  # every value parses


def test_gpu_deployment_requests_a_gpu_and_uses_cuda() -> None:
    container = _container(_load(K8S / "deployment-gpu.yaml"))
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert _env(container)["WHISPER_API_DEVICE"] == "cuda"
    assert _env(container)["WHISPER_API_WORKERS"] == "1"


def test_service_reaches_the_pods_http_port() -> None:
    service = _load(K8S / "service.yaml")
    labels = _load(K8S / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_compose_runs_the_image_with_a_readiness_healthcheck() -> None:
    service = _load(ROOT / "docker-compose.yml")["services"]["whisper-api"]
    assert service["image"] == "whisper_api:latest"
    assert "8000:8000" in service["ports"]
    assert "/ready" in " ".join(service["healthcheck"]["test"])
    assert int(service["stop_grace_period"].rstrip("s")) > GRACEFUL_TIMEOUT
    assert set(service["environment"]) <= KNOWN_ENV
    Settings.from_env(service["environment"])


def test_compose_gpu_override_reserves_an_nvidia_gpu() -> None:
    service = _load(ROOT / "docker-compose.gpu.yml")["services"]["whisper-api"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia"
    assert "gpu" in device["capabilities"]
    assert service["environment"]["WHISPER_API_DEVICE"] == "cuda"


def test_compose_nginx_mounts_the_shipped_files() -> None:
    nginx = _load(ROOT / "docker-compose.yml")["services"]["nginx"]
    for mount in nginx["volumes"]:
        source = mount.split(":")[0]
        assert (ROOT / source).is_file(), source
