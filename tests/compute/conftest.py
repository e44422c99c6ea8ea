"""Fixtures of the compute tests: datastore settings with a recognisable credential, an in-memory Kubernetes API
server with a test kubelet, and the private Docker engine of scripts/docker-engine.sh."""

from __future__ import annotations

import os

import pytest

from airflow_mlpipe.storage.config import DatastoreConfig
from tests.compute.helpers import s3_config
from tests.kubernetes_env import KubernetesEnv

__all__ = ["KubernetesEnv"]


@pytest.fixture
def datastore_config() -> DatastoreConfig:
    return s3_config()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "docker: needs the test Docker engine (scripts/docker-engine.sh); skipped without"
    )
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (nvidia-smi); skipped without")


# -- Docker ---------------------------------------------------------------------------------------------------------
DOCKER_IMAGE = os.environ.get("MLPIPE_TEST_IMAGE", "mlpipe-test-python:bookworm")


def docker_host() -> str:
    default = f"unix://{os.environ.get('TMPDIR', '/tmp')}/mlpipe-docker/docker.sock"
    return os.environ.get("MLPIPE_TEST_DOCKER_HOST", default)


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The URL of the test Docker engine with the test image; skips when there is none, unless the test command
    started one (``MLPIPE_REQUIRE_DOCKER=1``): then a missing engine fails the test."""
    host = docker_host()
    hint = "start one with `bash scripts/docker-engine.sh` (root; installs docker.io and builds the image once)"
    missing = pytest.fail if os.environ.get("MLPIPE_REQUIRE_DOCKER") == "1" else pytest.skip
    try:
        from docker.api.client import APIClient

        client = APIClient(base_url=host, timeout=10)
        client.ping()
    except Exception as exc:
        missing(f"no Docker engine at {host} ({type(exc).__name__}): {hint}")
    if not client.images(name=DOCKER_IMAGE):
        missing(f"the Docker engine at {host} has no image {DOCKER_IMAGE!r}: {hint}")
    client.close()
    return host
