"""What Docker and Kubernetes steps share: the image, the command, the plain environment, and the datastores.

A container step runs ``<python> <launch.args>`` in an image. Its plain environment is the compute target's
``env``, then the environment's ``env_vars``, then the step runner's own variables (which win). Datastore
credentials never travel in the plain environment: each target hands them over through its secret mechanism
(Kubernetes Secrets, Docker's private environment), and ``assert_no_credentials`` checks every plain part of the
container's definition before it is created.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from airflow_mlpipe.compute.base import ComputeTarget, StepLaunch
from airflow_mlpipe.compute.environment import Environment, check_environment_fits
from airflow_mlpipe.compute.keyed import DEFAULT_CONTAINER_PYTHON
from airflow_mlpipe.compute.validation import check_env, check_image, safe_label_value
from airflow_mlpipe.core.secrets import holds_secret_value, is_secret_key
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import DatastoreConfig, env_var_name

MANAGED_BY = {"app.kubernetes.io/managed-by": "airflow-mlpipe"}
# Our own labels, next to the dag_id/task_id/run_id labels the providers add at run time.
LABEL_PREFIX = "airflow-mlpipe"
# Shorter strings are not credentials, and searching for them would flag innocent arguments.
_MIN_SECRET_LENGTH = 6
# The part of ``assert_no_credentials``'s parts that is the plain environment (a name -> value map).
ENV_PART = "environment"
# How each container target passes a secret variable instead of a plain one ({name}: the variable).
SECRET_ENV_FIXES = {
    "kubernetes": (
        "keep it in a Kubernetes Secret and let the pod read it from there: KubernetesCompute(secrets=[Secret('env', "
        "'{name}', '<secret name>', '<key>')]) (from airflow.providers.cncf.kubernetes.secret import Secret)"
    ),
    "docker": (
        "pass it in DockerCompute(private_env={{'{name}': ...}}), which goes into the DockerOperator's "
        "private_environment (neither rendered nor logged)"
    ),
}


def container_image(default_image: str | None, environment: Environment | None, *, what: str) -> str:
    """The environment's image, else the compute target's."""
    image = environment.image if environment is not None and environment.image else default_image
    if image is None:
        raise ConfigError(
            f"{what}: no image to run the step in; set {what}(image=...) or Environment(image=...), e.g. an image "
            "with Python and airflow-mlpipe installed"
        )
    return check_image(image, what=what)


def check_step_image(step: str, compute: ComputeTarget, environment: Environment | None) -> None:
    """When a step is defined: a container target with ``image=None`` runs the image of the step's environment,
    so one of the two must name an image (the same rule as :func:`container_image`, told before the DAG runs)."""
    if compute.kind not in ("docker", "kubernetes") or getattr(compute, "image", None) is not None:
        return
    if environment is not None and environment.image:
        return
    what = type(compute).__name__
    has = "no Environment" if environment is None else "an Environment without an image"
    raise ConfigError(
        f"step {step!r}: {what}(image=None) runs the image of the step's Environment, and the step has {has}: set "
        f"{what}(image=...) or Environment(image=...), an image with Python and airflow-mlpipe installed (e.g. "
        "built from docker/Dockerfile)"
    )


def container_command(environment: Environment | None, launch: StepLaunch) -> list[str]:
    """``[python, *launch.args]``: the step runner, started by the environment's interpreter."""
    python = environment.python if environment is not None and environment.python else DEFAULT_CONTAINER_PYTHON
    args = list(launch.args)
    if not all(isinstance(a, str) for a in args):
        raise ConfigError(f"step {launch.step_name!r}: every launch argument must be a string, got {args!r}")
    return [python, *args]


def plain_env(compute_env: Mapping[str, str], environment: Environment | None, launch: StepLaunch) -> dict[str, str]:
    env = dict(compute_env)
    if environment is not None:
        env.update(environment.env_vars)
    env.update(check_env(launch.env, what=f"step {launch.step_name!r} launch env", own=True))
    return env


def required_datastores(
    launch: StepLaunch, datastores: Mapping[str, DatastoreConfig], *, what: str
) -> list[DatastoreConfig]:
    """The configs of the datastores the step needs, in ``launch.datastores`` order, each once."""
    missing = [name for name in launch.datastores if name not in datastores]
    if missing:
        raise ConfigError(
            f"{what}: step {launch.step_name!r} needs datastores {missing!r}, but no settings were given for them "
            f"(datastores given: {sorted(datastores)!r})"
        )
    return [datastores[name] for name in dict.fromkeys(launch.datastores)]


def is_in_process(config: DatastoreConfig) -> bool:
    """A datastore that lives in this machine's memory or file system, not behind a network endpoint."""
    return config.parsed.protocol in ("file", "memory")


def unreachable_message(config: DatastoreConfig, *, where: str, fix: str) -> str:
    if config.parsed.protocol == "memory":
        kind = f"an in-memory store ({config.public_url}) that exists only inside one Python process"
    else:
        kind = f"a local folder ({config.public_url})"
    return (
        f"datastore {config.name!r} is {kind}, which {where} cannot reach: {fix}, e.g. set the connection "
        f"{config.name!r} ({env_var_name(config.name)}) to az://container/prefix or s3://bucket/prefix, "
        "or run this step on LocalCompute()"
    )


def assert_no_credentials(
    configs: Iterable[DatastoreConfig], parts: Mapping[str, object], *, what: str, secret_fix: str
) -> None:
    """Refuse to build a container whose plain definition (command, env, labels...) holds a credential: a
    datastore's (anywhere in a part) or a variable named as one (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, in a
    plain env map or a manifest's ``{"name", "value"}`` entry) unless its value is a switch or a number.

    The message names the datastore or the variable and the part, never the value; ``secret_fix`` says how the
    target passes a secret variable instead."""
    for config in configs:
        for secret in config.secret_values:
            if len(secret) < _MIN_SECRET_LENGTH:
                continue
            for part, value in parts.items():
                if secret in str(value):
                    raise ConfigError(
                        f"{what}: a credential of datastore {config.name!r} appears in the container's {part}; "
                        "credentials reach a step only through its compute target's secret mechanism: remove it "
                        "from the arguments and environment variables"
                    )
    for part, value in parts.items():
        for name in secret_variables(value, env_map=part == ENV_PART):
            raise ConfigError(
                f"{what}: the container's {part} sets {name!r} as a plain value, and its name says it holds a "
                f"credential; plain values are written into the container's spec and the step's records: "
                f"{secret_fix.format(name=name)}"
            )


def secret_variables(value: object, *, env_map: bool = False) -> Iterator[str]:
    """Names of variables in ``value`` that look like credentials and have a plain value: keys of an env map
    (``env_map=True``: ``{"HF_TOKEN": "..."}``), else ``{"name": ..., "value": ...}`` entries of a manifest
    (a container's ``env``), however nested."""
    if isinstance(value, Mapping):
        if env_map:
            yield from (str(k) for k, v in value.items() if is_secret_key(k) and holds_secret_value(v))
        elif isinstance(value.get("name"), str) and "value" in value:
            if is_secret_key(value["name"]) and holds_secret_value(value["value"]):
                yield str(value["name"])
        else:
            for item in value.values():
                yield from secret_variables(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_variables(item)


@dataclass(frozen=True)
class ContainerStep:
    """What any container target runs for one step, checked: image, command, plain env, labels, datastores."""

    image: str
    command: list[str]
    env: dict[str, str]
    labels: dict[str, str]
    datastores: list[DatastoreConfig]


class ContainerTarget(Protocol):
    """What ``DockerCompute`` and ``KubernetesCompute`` have in common."""

    kind: str

    @property
    def image(self) -> str | None: ...

    @property
    def env(self) -> Mapping[str, str] | None: ...

    @property
    def labels(self) -> Mapping[str, str] | None: ...


def container_step(
    compute: ContainerTarget,
    *,
    task_id: str,
    launch: StepLaunch,
    datastores: Mapping[str, DatastoreConfig],
    environment: Environment | None,
    dag_id: str | None,
    check_reachable: Callable[[list[DatastoreConfig]], None],
) -> ContainerStep:
    """The checked parts of a container step; ``check_reachable`` refuses datastores the container can't reach."""
    what = type(compute).__name__
    check_environment_fits(environment, compute)
    image = container_image(compute.image, environment, what=what)
    configs = required_datastores(launch, datastores, what=what)
    check_reachable(configs)
    return ContainerStep(
        image=image,
        command=container_command(environment, launch),
        env=plain_env(compute.env or {}, environment, launch),
        labels={**(compute.labels or {}), **step_labels(task_id, launch.step_name, dag_id)},
        datastores=configs,
    )


def step_labels(task_id: str, step_name: str, dag_id: str | None) -> dict[str, str]:
    labels = {
        **MANAGED_BY,
        f"{LABEL_PREFIX}/task": safe_label_value(task_id),
        f"{LABEL_PREFIX}/step": safe_label_value(step_name),
    }
    if dag_id:
        labels[f"{LABEL_PREFIX}/dag"] = safe_label_value(dag_id)
    return labels
