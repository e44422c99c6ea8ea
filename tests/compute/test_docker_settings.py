"""DockerCompute's GPU, shm, mount and user settings and its pass-through, as the container the provider's own
``DockerOperator`` code would create (captured at the engine client, built by docker-py's real host config); bad
settings refused when the compute target is created; a GPU request on an engine without a GPU runtime explained."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_mlpipe.compute import DockerCompute
from airflow_mlpipe.compute.docker import build_docker_operator, explain_gpu_failure
from airflow_mlpipe.exceptions import ConfigError
from tests.compute.helpers import LAUNCH, s3_config

IMAGE = "ghcr.io/example/train:1.4"


class _Created(Exception):
    """Raised by the fake engine once the container's definition is known: nothing runs."""


class FakeEngine:
    """The calls ``DockerOperator`` makes before a container starts, answered without an engine; the host config
    is docker-py's own (it checks every value against the API version)."""

    def __init__(self) -> None:
        from docker import APIClient

        self.real = APIClient(base_url="tcp://127.0.0.1:9", version="1.43")  # connects to nothing
        self.created: dict[str, Any] = {}

    def images(self, name: str) -> list[dict[str, str]]:
        return [{"Id": name}]

    def create_host_config(self, **kwargs: Any) -> Any:
        return self.real.create_host_config(**kwargs)

    def create_container(self, **kwargs: Any) -> None:
        self.created = kwargs
        raise _Created


def container_config(compute: DockerCompute) -> dict[str, Any]:
    operator = build_docker_operator(
        compute, task_id="train", launch=LAUNCH, datastores={"mlpipe_default": s3_config()}, dag_id="ml"
    )
    engine = FakeEngine()
    operator.__dict__["hook"] = SimpleNamespace(api_client=engine)  # `cli` is the hook's client
    operator._normalize_mounts()
    with pytest.raises(_Created):
        operator._run_image()
    return engine.created


def test_a_gpu_training_container() -> None:
    created = container_config(
        DockerCompute(
            image=IMAGE,
            gpus=["0", "1"],
            shm_size="8g",
            user="1000:1000",
            network_mode="host",
            mounts=["/srv/cache:/cache", {"source": "hf", "target": "/hf", "type": "volume"}],
            operator_kwargs={"ipc_mode": "host", "ulimits": None, "working_dir": "/work", "hostname": "trainer"},
        )
    )
    host = created["host_config"]
    assert host["ShmSize"] == 8 * 1024**3
    assert host["DeviceRequests"] == [
        {"Driver": "", "Count": 0, "DeviceIDs": ["0", "1"], "Capabilities": [["gpu"]], "Options": {}}
    ]
    assert host["NetworkMode"] == "host" and host["IpcMode"] == "host"
    assert [(m["Source"], m["Target"], m["Type"]) for m in host["Mounts"]] == [
        ("/srv/cache", "/cache", "bind"),
        ("hf", "/hf", "volume"),
    ]
    assert created["user"] == "1000:1000"
    assert created["working_dir"] == "/work" and created["hostname"] == "trainer"
    assert created["image"] == IMAGE


@pytest.mark.parametrize(
    ("shm_size", "expected"),
    [
        pytest.param(2**30, 2**30, id="bytes"),
        pytest.param("512m", 512 * 2**20, id="512m"),
        pytest.param("1G", 2**30, id="1G"),
    ],
)
def test_shm_size_in_bytes_or_docker_units(shm_size: Any, expected: int) -> None:
    assert container_config(DockerCompute(image=IMAGE, shm_size=shm_size))["host_config"]["ShmSize"] == expected


def test_pass_through_is_described_for_run_records() -> None:
    compute = DockerCompute(image=IMAGE, operator_kwargs={"privileged": False, "cap_add": ["SYS_PTRACE"]})
    assert compute.describe()["operator_kwargs"] == {"privileged": False, "cap_add": ["SYS_PTRACE"]}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"operator_kwargs": {"ipc": "host"}},
            r"'ipc' is not an argument of the installed DockerOperator; "
            r"did you mean 'ipc_mode'",
            id="unknown-kwarg",
        ),
        pytest.param({"operator_kwargs": {"shm_size": 1}}, r"set by DockerCompute\(shm_size=", id="owned"),
        pytest.param({"operator_kwargs": {"device_requests": []}}, r"DockerCompute\(gpus=", id="owned-gpus"),
        pytest.param(
            {"operator_kwargs": {"execution_timeout": 5}}, "set it on the step's operator", id="base-operator"
        ),
        pytest.param({"shm_size": -1}, "shm_size -1 is negative", id="negative-shm"),
        pytest.param({"shm_size": "-2g"}, "shm_size '-2g' is negative", id="negative-shm-text"),
        pytest.param({"shm_size": 0}, "shm_size 0 is zero", id="zero-shm"),
        pytest.param({"shm_size": "8Gi"}, "must be bytes or a size", id="k8s-units"),
        pytest.param({"user": ""}, "user '' must be a user name or id", id="user"),
        pytest.param({"gpus": -1}, "gpus -1 must be", id="gpus"),
    ],
)
def test_bad_settings_fail_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DockerCompute(image=IMAGE, **kwargs)


def test_a_gpu_request_on_an_engine_without_gpu_runtime_is_explained() -> None:
    from docker.errors import APIError

    refused = APIError('500 Server Error: could not select device driver "" with capabilities: [[gpu]]')
    hint = explain_gpu_failure(DockerCompute(image=IMAGE, gpus="all", docker_url="tcp://gpu-host:2376"), refused)
    assert hint is not None and "tcp://gpu-host:2376 has no GPU runtime" in hint and "NVIDIA Container Toolkit" in hint
    assert explain_gpu_failure(DockerCompute(image=IMAGE), refused) is None, "no GPU asked: not the reason"
    assert explain_gpu_failure(DockerCompute(image=IMAGE, gpus=1), APIError("no such image")) is None


def test_the_step_fails_with_the_explanation() -> None:
    from docker.errors import APIError

    from airflow_mlpipe.exceptions import StepFailedError
    from airflow_mlpipe.operators.script_work import ScriptWork

    work = ScriptWork.__new__(ScriptWork)
    work.op = SimpleNamespace(compute_target=DockerCompute(image=IMAGE, gpus=1), task_id="train")  # type: ignore[assignment]

    def refuse() -> None:
        raise APIError('could not select device driver "" with capabilities: [[gpu]]')

    with pytest.raises(StepFailedError, match=r"step 'train': DockerCompute\(gpus=1\) asks for GPUs"):
        work._delegated(SimpleNamespace(log=None), refuse)  # type: ignore[arg-type]
