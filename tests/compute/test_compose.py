"""docker-compose.yaml: the one-machine stack is complete, consistent with the provider's settings, and local-only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from airflow_mlpipe.storage.config import config_from_connection_string

REPO = Path(__file__).resolve().parents[2]
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


def airflow_env(services: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in services["airflow-scheduler"]["environment"].items()}


def published_ports(service: dict[str, Any]) -> list[tuple[str | None, str]]:
    """(host address, port mapping) of each published port, in the short or the long syntax."""
    found: list[tuple[str | None, str]] = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            found.append((port.get("host_ip"), f"{port.get('published')}:{port.get('target')}"))
            continue
        text = str(port)
        match = re.match(r"^(?:(\d+\.\d+\.\d+\.\d+|\[[0-9a-fA-F:]+\]):)?(.+)$", text)
        assert match is not None, text
        host, mapping = match.groups()
        found.append((host, mapping) if mapping.count(":") == 1 else (None, text))
    return found


def test_the_stack_has_every_service(services: dict[str, Any]) -> None:
    assert {"postgres", "azurite", "s3", "airflow-init", *AIRFLOW_SERVICES} <= set(services)
    for name, command in AIRFLOW_SERVICES.items():
        assert services[name]["command"] == command, name
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_airflow_services_share_one_image_and_environment(services: dict[str, Any]) -> None:
    names = ["airflow-init", *AIRFLOW_SERVICES]
    assert {services[n]["image"] for n in names} == {"airflow-mlpipe:local"}
    assert all(services[n]["build"] == {"context": ".", "dockerfile": "docker/Dockerfile"} for n in names)
    environments = [services[n]["environment"] for n in names]
    assert all(env == environments[0] for env in environments)


def test_every_published_port_listens_on_localhost_only(services: dict[str, Any]) -> None:
    published = {name: published_ports(s) for name, s in services.items() if s.get("ports")}
    assert published, "the stack publishes no port"
    for name, ports in published.items():
        for host, mapping in ports:
            assert host == "127.0.0.1", f"{name} publishes {mapping} on {host or 'every interface'}"
    assert all(s.get("network_mode") != "host" for s in services.values())


def test_the_example_dags_are_mounted_where_airflow_reads_dags(services: dict[str, Any]) -> None:
    dags_folder = airflow_env(services)["AIRFLOW__CORE__DAGS_FOLDER"]
    for name in ["airflow-scheduler", "airflow-dag-processor"]:
        mounts = [str(v).split(":") for v in services[name]["volumes"]]
        assert ["./dags_examples", dags_folder, "ro"] in mounts, name
    assert (REPO / "dags_examples").is_dir()


def test_default_datastore_is_azurite_and_parses(services: dict[str, Any]) -> None:
    config = config_from_connection_string("mlpipe_default", airflow_env(services)["AIRFLOW_CONN_MLPIPE_DEFAULT"])
    assert config.parsed.protocol == "abfs" and config.url == "az://mlpipe/datastore"
    parts = dict(p.split("=", 1) for p in config.storage_options["connection_string"].strip(";").split(";"))
    endpoint = urlsplit(parts["BlobEndpoint"])
    assert endpoint.hostname == "azurite"
    azurite = services["azurite"]["command"]
    assert str(endpoint.port) == azurite[azurite.index("--blobPort") + 1]
    assert azurite[azurite.index("--blobHost") + 1] == "0.0.0.0"  # inside its container, reached through compose


def test_s3_datastore_points_at_the_s3_service(services: dict[str, Any]) -> None:
    config = config_from_connection_string("mlpipe_s3", airflow_env(services)["AIRFLOW_CONN_MLPIPE_S3"])
    assert config.parsed.protocol == "s3"
    endpoint = urlsplit(config.storage_options["endpoint_url"])
    assert endpoint.hostname == "s3" and str(endpoint.port) == services["s3"]["environment"]["MOTO_PORT"]
    assert config.storage_options["client_kwargs"] == {"region_name": "eu-west-1"}


def test_airflow_settings_point_at_the_stack(services: dict[str, Any]) -> None:
    env = airflow_env(services)
    db = urlsplit(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    pg = services["postgres"]["environment"]
    assert (db.hostname, db.username, db.password, db.path.lstrip("/")) == (
        "postgres",
        pg["POSTGRES_USER"],
        pg["POSTGRES_PASSWORD"],
        pg["POSTGRES_DB"],
    )
    api = urlsplit(env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert api.hostname == "airflow-apiserver" and api.path == "/execution/"
    assert [p.split(":")[-1] for p in services["airflow-apiserver"]["ports"]] == [str(api.port)]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    broker = urlsplit(env["AIRFLOW__CELERY__BROKER_URL"])
    assert (broker.scheme, broker.hostname) == ("redis", "redis") and "redis" in services
    assert services["airflow-worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    backend = urlsplit(env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+"))
    assert (backend.hostname, backend.username) == ("postgres", pg["POSTGRES_USER"])
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"]
    init = services["airflow-init"]["command"]
    assert init == ["bash", "/opt/mlpipe/init-stack.sh"]
    script = (REPO / "docker" / "init-stack.sh").read_text()
    assert "mlpipe_default" in script and "airflow db migrate" in script


def test_image_installs_this_provider_with_the_lock_as_constraints() -> None:
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    lock = (REPO / "requirements" / "lock.txt").read_text()
    airflow = re.search(r"^apache-airflow==(\S+)$", lock, re.MULTILINE)
    assert airflow is not None
    assert f"ARG AIRFLOW_VERSION={airflow.group(1)}" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    assert "--constraint /opt/mlpipe/src/requirements/lock.txt" in dockerfile
    # The build context is the repository root: everything is excluded but what the image installs.
    rules = [r for r in (REPO / "docker" / "Dockerfile.dockerignore").read_text().splitlines() if r and r[0] != "#"]
    assert rules[0] == "*" and "!airflow_mlpipe/" in rules and not any(".venv" in r for r in rules)
