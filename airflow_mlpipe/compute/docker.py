"""``DockerCompute``: a step runs in a container through the docker provider's ``DockerOperator``.

Docker has no Secret object for plain containers, so datastore connections (``AIRFLOW_CONN_<NAME>``) and the
step's other secrets (``private_env``) travel in the operator's ``private_environment``: Airflow neither renders
nor logs it, and it never enters run records. A plain variable named as a credential is refused. Anyone
who may use the Docker engine can still read a container's environment (``docker inspect``): give the engine's
socket to Airflow only.

A local (``file://``) datastore is reachable from a container only through a bind mount at the same path, which
``check_datastores_reachable_from_container`` checks; in-memory datastores never are.

What ML steps use most has a name here (``gpus``, ``shm_size``, ``mounts``, ``user``, ``network_mode``...); every
other ``DockerOperator`` argument goes in ``operator_kwargs``, checked against the installed provider's signature
when the compute target is created.

The image needs Python and airflow-mlpipe: build one from this project's ``docker/Dockerfile`` (or
``pip install airflow-mlpipe`` in your own), or, on a development machine, bind-mount the checkout and a
virtualenv of the same Python version read-only and put them on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.compute.base import ComputeTarget, StepLaunch
from airflow_mlpipe.compute.containers import (
    ENV_PART,
    SECRET_ENV_FIXES,
    assert_no_credentials,
    container_step,
    is_in_process,
    unreachable_message,
)
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.compute.passthrough import check_operator_kwargs, describe_value
from airflow_mlpipe.compute.validation import (
    check_env,
    check_image,
    check_labels,
    description_hash,
)
from airflow_mlpipe.core.secrets import scrubbed_repr
from airflow_mlpipe.datasets.seal import ATTEMPT_KEY_ENV
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import DatastoreConfig, config_to_env_value, env_var_name

if TYPE_CHECKING:
    from airflow.providers.docker.operators.docker import DockerOperator

__all__ = [
    "DockerCompute",
    "build_docker_operator",
    "check_datastores_reachable_from_container",
    "explain_gpu_failure",
]

_AUTO_REMOVE = ("never", "success", "force")
_MOUNT_TYPES = ("bind", "volume", "tmpfs")
_MEMORY_RE = re.compile(r"^\d+[bkmg]?$", re.IGNORECASE)
_DOCKER_URL_SCHEMES = ("unix://", "tcp://", "http://", "https://", "ssh://", "npipe://")


@scrubbed_repr
@dataclass(frozen=True)
class DockerCompute(ComputeTarget):
    """Run steps in Docker containers on a Docker engine the Airflow worker can reach.

    :param image: the default image (an ``Environment(image=...)`` wins); it needs Python and airflow-mlpipe.
        None: each step's ``Environment(image=...)`` must give one (checked when the step is defined).
    :param docker_url: the engine, e.g. ``unix:///var/run/docker.sock`` or ``tcp://host:2376`` (default:
        ``DOCKER_HOST`` or the local socket).
    :param docker_conn_id: an Airflow Docker connection for registry login.
    :param gpus: GPUs for the container: a count, ``"all"``, or a list of device ids (``["0", "2"]``).
    :param network_mode: ``"bridge"``, ``"host"``, ``"none"`` or a network name.
    :param mounts: bind mounts and volumes: ``"/src:/dst"``, ``"/src:/dst:ro"``, dicts
        ``{"source": ..., "target": ..., "type": "bind", "read_only": True}`` or ``docker.types.Mount``.
    :param env: plain environment variables (no credentials; ``AIRFLOW_CONN_*`` is refused). Named ``env`` as in
        ``KubernetesCompute``; ``environment`` is the step's ``Environment``.
    :param auto_remove: remove the container afterwards: ``"never"``, ``"success"`` or ``"force"``.
    :param cpus: CPUs (relative CPU shares, as Docker's ``--cpu-shares`` / 1024).
    :param mem_limit: memory limit, bytes or ``"512m"``, ``"4g"``.
    :param shm_size: size of ``/dev/shm``: bytes or ``"8g"``, ``"512m"`` (PyTorch data loaders want more than the
        default 64 MB).
    :param user: the user the process runs as (``"1000"``, ``"1000:1000"``, a name).
    :param labels: extra container labels.
    :param operator_kwargs: any other ``DockerOperator`` argument (``ipc_mode``, ``ulimits``, ``privileged``,
        ``cap_add``, ``extra_hosts``, ``timeout``...), checked against the installed provider's signature when this
        object is created.
    :param private_env: secret environment variables (``{"HF_TOKEN": ...}``): they go into the operator's
        ``private_environment`` with the datastores' connections, never into ``environment``, run records or the
        reuse key; descriptions show their names only. A secret-named variable in ``env`` is refused.
    """

    image: str | None = None
    docker_url: str | None = None
    docker_conn_id: str | None = None
    gpus: int | str | Sequence[str] | None = None
    network_mode: str | None = None
    mounts: Sequence[str | Mapping[str, Any]] = ()
    env: Mapping[str, str] | None = None
    auto_remove: str = "success"
    cpus: float | None = None
    mem_limit: str | int | None = None
    shm_size: int | str | None = None
    user: str | None = None
    labels: Mapping[str, str] | None = None
    operator_kwargs: Mapping[str, Any] | None = None
    private_env: Mapping[str, str] | None = field(default=None, repr=False)

    kind = "docker"

    def __post_init__(self) -> None:
        what = "DockerCompute"
        if self.image is not None:
            check_image(self.image, what=what)
        if self.docker_url is not None and (
            not isinstance(self.docker_url, str) or not self.docker_url.startswith(_DOCKER_URL_SCHEMES)
        ):
            raise ConfigError(
                f"{what} docker_url {self.docker_url!r} is not an engine address; write e.g. "
                "'unix:///var/run/docker.sock' or 'tcp://host:2376'"
            )
        self._put("gpus", _check_gpus(self.gpus, what=what))
        if self.network_mode is not None and (not isinstance(self.network_mode, str) or not self.network_mode):
            raise ConfigError(f"{what} network_mode {self.network_mode!r} must be 'bridge', 'host', 'none' or a name")
        self._put("mounts", tuple(_check_mount(m, what=f"{what} mounts") for m in _as_list(self.mounts, what)))
        self._put("env", check_env(self.env, what=f"{what} env"))
        self._put("private_env", check_env(self.private_env, what=f"{what} private_env"))
        if self.auto_remove not in _AUTO_REMOVE:
            raise ConfigError(f"{what} auto_remove {self.auto_remove!r} must be one of {list(_AUTO_REMOVE)!r}")
        if self.cpus is not None and (
            isinstance(self.cpus, bool) or not isinstance(self.cpus, int | float) or self.cpus <= 0
        ):
            raise ConfigError(f"{what} cpus {self.cpus!r} must be a positive number")
        if self.mem_limit is not None and not _MEMORY_RE.match(str(self.mem_limit)):
            raise ConfigError(f"{what} mem_limit {self.mem_limit!r} must be bytes or a size such as '512m' or '4g'")
        self._put("shm_size", _check_shm_size(self.shm_size, what=f"{what} shm_size"))
        if self.user is not None and (not isinstance(self.user, str) or not self.user.strip()):
            raise ConfigError(f"{what} user {self.user!r} must be a user name or id, e.g. '1000' or '1000:1000'")
        self._put("labels", check_labels(self.labels, what=f"{what} labels"))
        self._put(
            "operator_kwargs",
            check_operator_kwargs(self.operator_kwargs, operator="DockerOperator", owned=_OWNED, what=what),
        )
        assert_no_credentials((), self._plain_parts(), what=what, secret_fix=SECRET_ENV_FIXES["docker"])

    def _plain_parts(self) -> dict[str, Any]:
        """The parts of the container this target sets that the operator renders and Docker shows as they are."""
        return {ENV_PART: dict(self.env or {}), "operator_kwargs": describe_value(self.operator_kwargs or {})}

    def _put(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    __hash__ = description_hash

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "image": self.image,
            "docker_url": self.docker_url,
            "docker_conn_id": self.docker_conn_id,
            "gpus": list(self.gpus) if isinstance(self.gpus, tuple) else self.gpus,
            "network_mode": self.network_mode,
            "mounts": [dict(m) for m in self.mounts if isinstance(m, Mapping)],
            "env": dict(self.env or {}),
            "auto_remove": self.auto_remove,
            "cpus": self.cpus,
            "mem_limit": self.mem_limit,
            "shm_size": self.shm_size,
            "user": self.user,
            "labels": dict(self.labels or {}),
            "operator_kwargs": describe_value(self.operator_kwargs or {}),
            "private_env": sorted(self.private_env or {}),  # names only
        }


def _as_list(mounts: object, what: str) -> list[Any]:
    if isinstance(mounts, str | Mapping) or not isinstance(mounts, Iterable):
        raise ConfigError(f"{what} mounts {mounts!r} must be a list, e.g. ['/data:/data:ro']")
    return list(mounts)


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_OWNED = {
    "task_id": "the step operator (PythonScriptOperator(task_id=...))",
    "command": "the step (its command is the step runner)",
    "image": "DockerCompute(image=...) or Environment(image=...)",
    "environment": "DockerCompute(env=...) or Environment(env_vars=...)",
    "private_environment": "the step's datastores (their connections travel there)",
    "device_requests": "DockerCompute(gpus=...)",
    "cpus": "DockerCompute(cpus=...)",
    **{
        name: f"DockerCompute({name}=...)"
        for name in (
            "docker_url",
            "docker_conn_id",
            "network_mode",
            "mounts",
            "auto_remove",
            "mem_limit",
            "shm_size",
            "user",
            "labels",
        )
    },
}


def _check_shm_size(value: object, *, what: str) -> int | None:
    """``/dev/shm``'s size in bytes, from bytes or a size such as ``"8g"``."""
    if value is None:
        return None
    if isinstance(value, str) and value.strip().startswith("-"):
        raise ConfigError(f"{what} {value!r} is negative; write a positive size such as '8g' (PyTorch data loaders)")
    if isinstance(value, int) and not isinstance(value, bool):
        number, unit = value, ""
    elif isinstance(value, str) and _MEMORY_RE.match(value.strip()):
        text = value.strip().lower()
        unit = text[-1] if text[-1].isalpha() else ""
        number = int(text[: len(text) - len(unit)])
    else:
        raise ConfigError(f"{what} {value!r} must be bytes or a size such as '512m' or '8g'")
    if number <= 0:
        word = "negative" if number < 0 else "zero"
        raise ConfigError(f"{what} {value!r} is {word}; write a positive size such as '8g' (PyTorch data loaders)")
    return number * _SIZE_UNITS[unit]


def explain_gpu_failure(compute: DockerCompute, error: BaseException) -> str | None:
    """What to do when the engine refused a GPU request because it has no GPU runtime; None for other errors."""
    if compute.gpus in (None, 0) or "could not select device driver" not in str(error):
        return None
    engine = compute.docker_url or os.environ.get("DOCKER_HOST") or "the local Docker engine"
    return (
        f"DockerCompute(gpus={compute.gpus!r}) asks for GPUs, but {engine} has no GPU runtime ({error}): install "
        "the NVIDIA Container Toolkit on the Docker host, then `nvidia-ctk runtime configure --runtime=docker` and "
        "restart Docker (check with `docker run --rm --gpus all ubuntu nvidia-smi`), or run the step without gpus"
    )


def _check_gpus(gpus: object, *, what: str) -> int | str | tuple[str, ...] | None:
    if gpus is None:
        return None
    if gpus == "all":
        return "all"
    if isinstance(gpus, int) and not isinstance(gpus, bool) and gpus >= 0:
        return gpus
    if isinstance(gpus, list | tuple) and gpus and all(isinstance(g, str) and g for g in gpus):
        return tuple(gpus)
    raise ConfigError(
        f"{what} gpus {gpus!r} must be a non-negative integer, 'all' or a list of device ids such as ['0', '1']"
    )


def _check_mount(mount: object, *, what: str) -> dict[str, Any]:
    if isinstance(mount, str):
        parts = mount.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise ConfigError(f"{what}: {mount!r} must be 'source:target' or 'source:target:ro'")
        raw: dict[str, Any] = {"source": parts[0], "target": parts[1], "read_only": parts[2:] == ["ro"]}
    elif isinstance(mount, Mapping):
        # docker.types.Mount is a dict with the API's keys (Target, Source, Type, ReadOnly).
        api = {"Target": "target", "Source": "source", "Type": "type", "ReadOnly": "read_only"}
        raw = {api.get(str(k), str(k)): v for k, v in mount.items() if v is not None and k in {*api, *api.values()}}
    else:
        raise ConfigError(f"{what}: {mount!r} must be 'source:target[:ro]', a dict or a docker.types.Mount")
    kind = raw.get("type", "bind")
    if kind not in _MOUNT_TYPES:
        raise ConfigError(f"{what}: type {kind!r} must be one of {list(_MOUNT_TYPES)!r}")
    target, source = raw.get("target"), raw.get("source")
    if not isinstance(target, str) or not target.startswith("/"):
        raise ConfigError(f"{what}: target {target!r} must be an absolute path inside the container")
    if kind == "bind" and (not isinstance(source, str) or not os.path.isabs(source)):
        raise ConfigError(f"{what}: bind mount source {source!r} must be an absolute path on the Docker host")
    return {"source": source, "target": target, "type": kind, "read_only": bool(raw.get("read_only", False))}


def check_datastores_reachable_from_container(
    compute: DockerCompute, datastore_configs: Mapping[str, DatastoreConfig] | Iterable[DatastoreConfig]
) -> None:
    """Raise ``ConfigError`` unless a container of ``compute`` can reach every datastore.

    A ``file://`` datastore counts as reachable when a bind mount shows its folder at the same path."""
    configs = datastore_configs.values() if isinstance(datastore_configs, Mapping) else datastore_configs
    for config in configs:
        if not is_in_process(config) or _mounted_at_same_path(compute, config.parsed.root):
            continue
        fix = "point it at shared storage"
        if config.parsed.protocol == "file":
            root = config.parsed.root
            fix = f"mount the folder at the same path, DockerCompute(mounts=['{root}:{root}']), or {fix}"
        raise ConfigError("DockerCompute: " + unreachable_message(config, where="a container", fix=fix))


def _mounted_at_same_path(compute: DockerCompute, root: str) -> bool:
    for mount in compute.mounts:
        if not isinstance(mount, Mapping) or mount["type"] != "bind" or mount["source"] != mount["target"]:
            continue
        folder = str(mount["source"]).rstrip("/") or "/"
        if root == folder or root.startswith(folder.rstrip("/") + "/"):
            return True
    return False


def build_docker_operator(
    compute: DockerCompute,
    *,
    task_id: str,
    launch: StepLaunch,
    datastores: Mapping[str, DatastoreConfig],
    environment: Environment | None = None,
    dag_id: str | None = None,
    **operator_kwargs: Any,
) -> DockerOperator:
    """A ``DockerOperator`` (configured, not run) that runs ``launch`` in a container of ``compute``.

    Datastore connections go into ``private_environment``; everything else the operator shows is checked to
    contain none of their credentials. ``operator_kwargs`` (``mount_tmp_dir``, ``xcom_all``, ``timeout``...)
    override ours.

    :raises ConfigError: before any container exists, for every problem found in the inputs.
    """
    from airflow.providers.docker.operators.docker import DockerOperator
    from docker.types import DeviceRequest, Mount

    step = container_step(
        compute,
        task_id=task_id,
        launch=launch,
        datastores=datastores,
        environment=environment,
        dag_id=dag_id,
        check_reachable=lambda configs: check_datastores_reachable_from_container(compute, configs),
    )
    plain = {**compute._plain_parts(), "command": step.command, ENV_PART: step.env, "labels": step.labels}
    assert_no_credentials(step.datastores, plain, what="DockerCompute", secret_fix=SECRET_ENV_FIXES["docker"])
    mounts = [
        Mount(target=m["target"], source=m["source"], type=m["type"], read_only=m["read_only"])
        for m in compute.mounts
        if isinstance(m, Mapping)
    ]
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "image": step.image,
        "command": step.command,
        "environment": step.env,
        "private_environment": {
            **dict(compute.private_env or {}),
            **{env_var_name(c.name): config_to_env_value(c) for c in step.datastores},
            **({ATTEMPT_KEY_ENV: launch.seal_key} if launch.seal_key else {}),
        },
        "mounts": mounts,
        "network_mode": compute.network_mode,
        "docker_url": compute.docker_url,
        "docker_conn_id": compute.docker_conn_id,
        "auto_remove": compute.auto_remove,
        "device_requests": _device_requests(compute.gpus, DeviceRequest),
        "mem_limit": compute.mem_limit,
        "shm_size": compute.shm_size,
        "user": compute.user,
        "labels": step.labels,
        # The step runner needs no scratch folder from the host, and the provider's default bind-mounts one,
        # which fails against a remote engine.
        "mount_tmp_dir": False,
    }
    if compute.cpus is not None:
        kwargs["cpus"] = compute.cpus
    kwargs.update(compute.operator_kwargs or {})
    kwargs.update(operator_kwargs)
    return DockerOperator(**kwargs)


def _device_requests(gpus: object, device_request: Any) -> list[Any] | None:
    if gpus is None or gpus == 0:
        return None
    if gpus == "all":
        return [device_request(count=-1, capabilities=[["gpu"]])]
    if isinstance(gpus, int):
        return [device_request(count=gpus, capabilities=[["gpu"]])]
    assert isinstance(gpus, tuple)
    return [device_request(device_ids=list(gpus), capabilities=[["gpu"]])]
