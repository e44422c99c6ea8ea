"""Environment and RunConfiguration: validated at construction, JSON-able, hashable."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_mlpipe.compute import DockerCompute, Environment, KubernetesCompute, LocalCompute, RunConfiguration
from airflow_mlpipe.exceptions import ConfigError


def test_pip_packages_are_a_sorted_set_and_describe_round_trips() -> None:
    env = Environment(
        name="sk", pip_packages=["scikit-learn==1.5.2", "pandas>=2", "pandas>=2"], env_vars={"B": "2", "A": "1"}
    )
    assert env.pip_packages == ("pandas>=2", "scikit-learn==1.5.2")
    data = json.loads(json.dumps(env.to_dict()))
    assert data["env_vars"] == {"A": "1", "B": "2"}
    assert Environment.from_dict(data) == env
    assert hash(Environment.from_dict(data)) == hash(env)
    assert env.describe() == env.to_dict()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"pip_packages": "pandas"}, "must be a list of requirements", id="packages-string"),
        pytest.param({"pip_packages": ["pandas=2.2"]}, "'pandas=2.2' is not a pip requirement", id="bad-requirement"),
        pytest.param({"pip_packages": [""]}, "'' is not a pip requirement", id="empty-requirement"),
        pytest.param({"image": "My Image"}, "not a valid image reference", id="image"),
        pytest.param({"env_vars": {"AIRFLOW_CONN_S3": "{}"}}, "connections carry credentials", id="connection-env"),
        pytest.param({"env_vars": {"1X": "a"}}, "not a valid environment variable name", id="env-name"),
        pytest.param({"python": "python 3"}, "not an interpreter name or path", id="python"),
        pytest.param({"name": ""}, "must be a non-empty string", id="name"),
    ],
)
def test_bad_environments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Environment(**kwargs)


def test_run_configuration_describes_environment_and_target() -> None:
    config = RunConfiguration(
        environment=Environment(name="torch", image="pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"),
        target=KubernetesCompute(gpu=1),
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["environment"]["name"] == "torch"
    assert data["target"]["kind"] == "kubernetes" and data["target"]["gpu"] == 1
    assert hash(config) == hash(RunConfiguration(environment=config.environment, target=KubernetesCompute(gpu=1)))
    assert RunConfiguration().to_dict() == {"environment": None, "target": None}


def test_step_arguments_override_a_shared_run_configuration() -> None:
    shared = RunConfiguration(environment=Environment(name="base"), target=LocalCompute())
    gpu = KubernetesCompute(gpu=1, image="ghcr.io/example/train:1")
    merged = shared.merged(target=gpu)
    assert merged.target == gpu and merged.environment == shared.environment
    assert shared.merged() == shared


@pytest.mark.parametrize(
    "target",
    [pytest.param(KubernetesCompute(), id="kubernetes"), pytest.param(DockerCompute(), id="docker")],
)
def test_pip_packages_are_refused_on_container_targets(target: Any) -> None:
    with pytest.raises(ConfigError, match="build an image that contains them"):
        RunConfiguration(environment=Environment(pip_packages=["torch==2.5.1"]), target=target)
    RunConfiguration(environment=Environment(pip_packages=["torch==2.5.1"]), target=LocalCompute())


def test_run_configuration_refuses_wrong_types() -> None:
    with pytest.raises(ConfigError, match="is not an Environment"):
        RunConfiguration(environment={"pip_packages": []})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="is not a compute target"):
        RunConfiguration(target="gpu-cluster")  # type: ignore[arg-type]
