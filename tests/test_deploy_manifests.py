"""The shipped Kubernetes manifests (validated offline against the API schemas) and Compose files parse
and say what the server needs; the autoscaling examples name only metrics the server exports."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

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


@pytest.fixture(params=["deployment.yaml", "gpu/deployment.yaml"])
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
    container = _container(_load(K8S / "gpu" / "deployment.yaml"))
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


KUBERNETES_VERSION = "1.31.0"
KUSTOMIZATIONS = [K8S, K8S / "gpu"]


def _resources(folder: Path) -> list[dict[str, Any]]:
    return [_load(folder / name) for name in _load(folder / "kustomization.yaml")["resources"]]


def _exported_metrics(client: FlaskClient) -> set[str]:
    """Metric families the server declares at /metrics (samples add _total, _bucket, ...)."""
    text = client.get("/metrics").get_data(as_text=True)
    return {family.name for family in text_string_to_metric_families(text)}


def _named_metrics(text: str) -> set[str]:
    return set(re.findall(r"whisper_api_[a-z_]+", text))


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=["cpu", "gpu"])
def test_kustomization_lists_every_manifest_and_each_is_valid(folder: Path) -> None:
    listed = set(_load(folder / "kustomization.yaml")["resources"])
    assert listed == {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    for resource in _resources(folder):
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=["cpu", "gpu"])
def test_autoscaler_and_disruption_budget_cover_their_deployment(folder: Path) -> None:
    by_kind = {resource["kind"]: resource for resource in _resources(folder)}
    deployment, hpa, pdb = (
        by_kind["Deployment"],
        by_kind["HorizontalPodAutoscaler"],
        by_kind["PodDisruptionBudget"],
    )
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for expression in pdb["spec"]["selector"].get("matchExpressions", []):
        assert expression["operator"] == "DoesNotExist" and expression["key"] not in labels
    assert pdb["spec"]["maxUnavailable"] == 1
    scaled_on = {metric["pods"]["metric"]["name"] for metric in hpa["spec"]["metrics"]}
    assert scaled_on == {"whisper_api_queue_depth", "whisper_api_slot_utilization"}


def test_gpu_and_cpu_disruption_budgets_select_disjoint_pods() -> None:
    cpu_pdb = _load(K8S / "pdb.yaml")["spec"]["selector"]
    gpu_labels = _load(K8S / "gpu" / "deployment.yaml")["spec"]["template"]["metadata"]["labels"]
    (excluded,) = cpu_pdb["matchExpressions"]
    assert excluded["key"] in gpu_labels


def test_prometheus_adapter_serves_what_the_autoscalers_ask_for(client: FlaskClient) -> None:
    rules = _load(K8S / "autoscaling" / "prometheus-adapter-values.yaml")["rules"]["custom"]
    served = {rule["name"]["as"] for rule in rules}
    for folder in KUSTOMIZATIONS:
        hpa = next(r for r in _resources(folder) if r["kind"] == "HorizontalPodAutoscaler")
        assert {metric["pods"]["metric"]["name"] for metric in hpa["spec"]["metrics"]} <= served
    queried = set().union(*(_named_metrics(rule["seriesQuery"] + rule["metricsQuery"]) for rule in rules))
    assert queried and queried <= _exported_metrics(client)


def test_keda_example_queries_exported_metrics(client: FlaskClient) -> None:
    scaled = _load(K8S / "autoscaling" / "keda-scaledobject.yaml")
    assert scaled["spec"]["scaleTargetRef"]["name"] == _load(K8S / "deployment.yaml")["metadata"]["name"]
    queries = " ".join(trigger["metadata"]["query"] for trigger in scaled["spec"]["triggers"])
    assert _named_metrics(queries) == {"whisper_api_slots_busy", "whisper_api_queue_depth"}
    assert _named_metrics(queries) <= _exported_metrics(client)


def test_dockerignore_keeps_tests_docs_and_virtual_environments_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "**/.venv", "tests", "docs", "bench", "**/node_modules"} <= ignored
