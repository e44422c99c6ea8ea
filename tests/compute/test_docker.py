"""DockerCompute -> the docker provider's DockerOperator; and a real container run on the test engine."""

from __future__ import annotations

import json
import os
import sysconfig
import textwrap
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_mlpipe.compute import DockerCompute, Environment, StepLaunch
from airflow_mlpipe.compute.delegate import execute_delegated
from airflow_mlpipe.compute.docker import build_docker_operator, check_datastores_reachable_from_container
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import config_from_fields
from tests.compute.conftest import DOCKER_IMAGE
from tests.compute.helpers import ACCESS_KEY, LAUNCH, SECRET_KEY, local_config, s3_config

REPO = Path(__file__).resolve().parents[2]


def build(compute: DockerCompute, **kwargs: Any) -> Any:
    kwargs.setdefault("launch", LAUNCH)
    kwargs.setdefault("datastores", {"mlpipe_default": s3_config()})
    return build_docker_operator(compute, task_id="train", dag_id="ml_pipeline", **kwargs)


def test_operator_runs_the_step_runner_with_credentials_only_in_the_private_environment() -> None:
    operator = build(DockerCompute(image="python:3.11-slim", env={"TEAM": "vision"}, network_mode="host"))
    assert operator.image == "python:3.11-slim"
    assert operator.command == ["python", *LAUNCH.args]
    assert operator.environment == {"TEAM": "vision", "MLPIPE_STEP": "train"}
    connection = json.loads(operator._private_environment["AIRFLOW_CONN_MLPIPE_DEFAULT"])
    assert connection["extra"]["url"] == "s3://mlpipe-test-bucket/steps" and connection["extra"]["secret"] == SECRET_KEY
    assert "_private_environment" not in operator.template_fields  # never rendered in the UI
    shown = json.dumps([operator.command, operator.environment, operator.labels, operator.image])
    assert SECRET_KEY not in shown and ACCESS_KEY not in shown
    assert operator.labels["airflow-mlpipe/dag"] == "ml_pipeline"
    assert operator.network_mode == "host"
    assert operator.auto_remove == "success"
    assert operator.mount_tmp_dir is False


@pytest.mark.parametrize(
    ("gpus", "expected"),
    [
        pytest.param(1, [{"Count": 1, "Capabilities": [["gpu"]]}], id="count"),
        pytest.param("all", [{"Count": -1, "Capabilities": [["gpu"]]}], id="all"),
        pytest.param(["0", "3"], [{"DeviceIDs": ["0", "3"], "Capabilities": [["gpu"]]}], id="device-ids"),
        pytest.param(None, None, id="none"),
        pytest.param(0, None, id="zero"),
    ],
)
def test_gpus_become_device_requests(gpus: Any, expected: Any) -> None:
    requests = build(DockerCompute(image="python:3.11-slim", gpus=gpus)).device_requests
    if expected is None:
        assert requests is None
        return
    assert [{k: v for k, v in r.items() if k in expected[0]} for r in requests] == expected


def test_mounts_in_every_form() -> None:
    from docker.types import Mount

    compute = DockerCompute(
        image="python:3.11-slim",
        mounts=[
            "/data:/data:ro",
            {"source": "/models", "target": "/models"},
            Mount(target="/cache", source="pip-cache", type="volume"),
        ],
    )
    mounts = [(m["Source"], m["Target"], m["Type"], m["ReadOnly"]) for m in build(compute).mounts]
    assert mounts == [
        ("/data", "/data", "bind", True),
        ("/models", "/models", "bind", False),
        ("pip-cache", "/cache", "volume", False),
    ]


def test_environment_image_and_interpreter_win() -> None:
    operator = build(
        DockerCompute(image="python:3.11-slim"),
        environment=Environment(image="ghcr.io/example/train:2", python="python3", env_vars={"A": "1"}),
    )
    assert operator.image == "ghcr.io/example/train:2"
    assert operator.command[0] == "python3"
    assert operator.environment["A"] == "1"


def test_local_datastore_needs_a_mount_at_the_same_path(tmp_path: Path) -> None:
    config = local_config(tmp_path / "store")
    bare = DockerCompute(image="python:3.11-slim")
    with pytest.raises(ConfigError, match=r"a container cannot reach: mount the folder at the same path"):
        check_datastores_reachable_from_container(bare, [config])
    check_datastores_reachable_from_container(DockerCompute(mounts=[f"{tmp_path}:{tmp_path}"]), [config])
    with pytest.raises(ConfigError, match="a container cannot reach"):
        check_datastores_reachable_from_container(DockerCompute(mounts=[f"{tmp_path}:/data"]), [config])
    memory = config_from_fields("mlpipe_default", conn_type=None, extra={"url": "memory://x"})
    with pytest.raises(ConfigError, match="in-memory store"):
        build(bare, datastores={"mlpipe_default": memory})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"image": "Python:3.11"}, "must be lowercase", id="image"),
        pytest.param({"gpus": -1}, "gpus -1 must be a non-negative integer", id="gpus-negative"),
        pytest.param({"gpus": "two"}, "gpus 'two' must be", id="gpus-word"),
        pytest.param({"mounts": "/a:/b"}, "must be a list", id="mounts-string"),
        pytest.param({"mounts": ["/a"]}, "must be 'source:target'", id="mount-form"),
        pytest.param({"mounts": ["relative:/b"]}, "source 'relative' must be an absolute path", id="mount-source"),
        pytest.param(
            {"mounts": [{"source": "/a", "target": "b"}]}, "target 'b' must be an absolute path", id="mount-target"
        ),
        pytest.param({"auto_remove": True}, "auto_remove True must be one of", id="auto-remove"),
        pytest.param({"mem_limit": "4 GB"}, "mem_limit '4 GB'", id="mem-limit"),
        pytest.param({"cpus": 0}, "cpus 0 must be a positive number", id="cpus"),
        pytest.param({"docker_url": "/var/run/docker.sock"}, "is not an engine address", id="docker-url"),
        pytest.param({"env": {"AIRFLOW_CONN_X": "{}"}}, "is a connection", id="env-connection"),
    ],
)
def test_bad_docker_settings_fail_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DockerCompute(**kwargs)


def test_bad_step_inputs_fail_before_any_container() -> None:
    with pytest.raises(ConfigError, match="no image to run the step in"):
        build(DockerCompute())
    with pytest.raises(ConfigError, match="asks for pip packages"):
        build(DockerCompute(image="python:3.11"), environment=Environment(pip_packages=["torch"]))
    launch = StepLaunch(step_name="train", args=("-c", SECRET_KEY), datastores=("mlpipe_default",))
    with pytest.raises(ConfigError, match="appears in the container's command") as info:
        build(DockerCompute(image="python:3.11"), launch=launch)
    assert SECRET_KEY not in str(info.value)


def test_describe_and_hash() -> None:
    compute = DockerCompute(image="python:3.11-slim", gpus=["0"], mounts=["/d:/d:ro"], env={"A": "1"})
    assert json.loads(json.dumps(compute.describe()))["mounts"] == [
        {"source": "/d", "target": "/d", "type": "bind", "read_only": True}
    ]
    assert hash(compute) == hash(
        DockerCompute(image="python:3.11-slim", gpus=("0",), mounts=["/d:/d:ro"], env={"A": "1"})
    )


# -- a real container ---------------------------------------------------------------------------------------------
# The step writes, through airflow_mlpipe's own Datastore, into a local datastore mounted at the same path, and
# reports what it saw of a second (S3) datastore whose connection came through the private environment.
PROBE = textwrap.dedent(
    """
    import json, os, sys
    from airflow_mlpipe.storage.config import config_from_env
    from airflow_mlpipe.storage.datastore import Datastore
    store = Datastore.from_config(config_from_env("mlpipe_default"))
    features = config_from_env("features")
    seen = {"greeting": os.environ["GREETING"], "features": features.url, "has_secret": bool(features.secret_values)}
    store.write_json("probe/seen.json", seen)
    sys.exit(int(os.environ.get("EXIT_CODE", "0")))
    """
)


def container_compute(engine: str, store: Path) -> DockerCompute:
    """The test image has only python3: the checkout and this virtualenv's packages are mounted read-only at
    their own paths and put on PYTHONPATH (same Python minor version, so compiled wheels load)."""
    site_packages = sysconfig.get_paths()["purelib"]
    return DockerCompute(
        image=DOCKER_IMAGE,
        docker_url=engine,
        network_mode="none",
        mounts=[f"{REPO}:{REPO}:ro", f"{site_packages}:{site_packages}:ro", f"{store}:{store}"],
        env={"PYTHONPATH": f"{REPO}:{site_packages}", "GREETING": "hello from the container"},
        # Files the step writes into the mounted datastore belong to the test's user, not to root.
        user=f"{os.getuid()}:{os.getgid()}",
    )


def run_probe(engine: str, store: Path, *, exit_code: int = 0) -> Any:
    launch = StepLaunch(
        step_name="probe",
        args=("-c", PROBE),
        env={"EXIT_CODE": str(exit_code)},
        datastores=("mlpipe_default", "features"),
    )
    operator = build_docker_operator(
        container_compute(engine, store),
        task_id="probe",
        launch=launch,
        datastores={"mlpipe_default": local_config(store), "features": s3_config("features")},
        environment=Environment(python="python3"),
    )
    return execute_delegated(operator, {})


@pytest.mark.docker
def test_step_runs_in_a_container(docker_engine: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    run_probe(docker_engine, store)
    assert json.loads((store / "probe" / "seen.json").read_text()) == {
        "greeting": "hello from the container",
        "features": "s3://mlpipe-test-bucket/steps",
        "has_secret": True,
    }


@pytest.mark.docker
def test_a_failing_step_fails_the_container_operator(docker_engine: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(AirflowException, match="Docker container failed"):
        run_probe(docker_engine, store, exit_code=3)
    assert (store / "probe" / "seen.json").exists()
