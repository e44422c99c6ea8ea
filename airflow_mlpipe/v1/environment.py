"""SDK v1's software and hardware settings: ``CondaDependencies``, ``Environment``, ``RunConfiguration``,
``ScriptRunConfig``, ``ComputeTarget`` and ``AmlCompute``, turned into airflow-mlpipe's ``Environment``,
``RunConfiguration`` and compute targets when the pipeline becomes a DAG.

Compute targets are named as in v1; a name means the compute target given for it with
``set_compute_target(name, target)`` (or ``Experiment.submit(..., compute_targets={...})``), and
``LocalCompute()`` (the Airflow worker) when none is. Provisioning is Kubernetes' or Docker's business: the
provisioning calls are accepted and do nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_mlpipe.compute.base import ComputeTarget as _ComputeTarget
from airflow_mlpipe.compute.environment import Environment as _Environment
from airflow_mlpipe.compute.environment import RunConfiguration as _RunConfiguration
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.core.checks import check_list, check_relative_file, check_str_list, check_text, shown
from airflow_mlpipe.exceptions import ConfigError

# The SDK itself is not installed into a step's environment: the compatibility package stands in for it.
_SDK_PACKAGE = re.compile(r"^azureml(-|_|$)", re.IGNORECASE)
_CONDA_ONLY = {"python", "pip", "conda"}
_compute_targets: dict[str, _ComputeTarget] = {}


def set_compute_target(name: str, target: _ComputeTarget) -> None:
    """What the v1 compute name ``name`` means here, e.g. ``set_compute_target("gpu-cluster",
    KubernetesCompute(gpus=1, ...))``."""
    if not isinstance(target, _ComputeTarget):
        raise ConfigError(
            f"set_compute_target({name!r}, {target!r}): use LocalCompute(), DockerCompute(...) or "
            "KubernetesCompute(...)"
        )
    _compute_targets[name] = target


def resolve_compute(value: Any, overrides: Mapping[str, _ComputeTarget] | None = None) -> _ComputeTarget | None:
    """A v1 ``compute_target`` (an object, a name, or a ``(name, type)`` tuple) as one of our compute targets."""
    if value is None or isinstance(value, _ComputeTarget):
        return value
    name = value.name if isinstance(value, ComputeTarget) else value[0] if isinstance(value, tuple) else value
    if not isinstance(name, str):
        raise ConfigError(f"compute_target {value!r}: give a compute target, its name, or (name, type)")
    if name == "local":
        return LocalCompute()
    return (overrides or {}).get(name) or _compute_targets.get(name) or LocalCompute()


class ComputeTargetException(Exception):
    """Importable for v1's ``try: ComputeTarget(ws, name) except ComputeTargetException: ...`` (never raised)."""


class ComputeTarget:
    """A compute target by name (v1's ``ComputeTarget(workspace, name)``); what it means is set with
    ``set_compute_target``."""

    def __init__(self, workspace: Any = None, name: str | None = None, **kwargs: Any) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("ComputeTarget(ws, name): give the compute target's name, e.g. 'cpu-cluster'")
        self.workspace, self.name = workspace, name

    @staticmethod
    def create(workspace: Any, name: str, provisioning_configuration: Any = None) -> ComputeTarget:
        """Nothing to provision: returns the target named ``name``."""
        return ComputeTarget(workspace, name)

    def wait_for_completion(self, show_output: bool = False, **kwargs: Any) -> None:
        """Nothing to wait for."""

    def get_status(self) -> str:
        return "Succeeded"

    def __repr__(self) -> str:
        return f"ComputeTarget(name={self.name!r})"


class AmlCompute(ComputeTarget):
    @staticmethod
    def provisioning_configuration(**kwargs: Any) -> dict[str, Any]:
        """Accepted and ignored (size the Kubernetes node pool or the worker instead)."""
        return dict(kwargs)


class CondaDependencies:
    """Pip and conda package lists; conda packages become pip requirements (``numpy=1.26`` → ``numpy==1.26``),
    ``python``/``pip`` and the ``azureml-*`` SDK packages are left out."""

    def __init__(self, conda_dependencies_file_path: str | None = None, **kwargs: Any) -> None:
        self._pip: list[str] = []
        self._conda: list[str] = []
        self.python_version: str | None = None
        if conda_dependencies_file_path:
            self._load(conda_dependencies_file_path)

    @staticmethod
    def create(
        pip_packages: Iterable[str] | None = None,
        conda_packages: Iterable[str] | None = None,
        python_version: str | None = None,
        pin_sdk_version: bool = True,
        pip_indexurl: str | None = None,
        **kwargs: Any,
    ) -> CondaDependencies:
        owner = "CondaDependencies.create"
        pips = check_str_list(owner, "pip_packages", pip_packages, example="numpy")
        condas = check_str_list(owner, "conda_packages", conda_packages, example="scipy")
        deps = CondaDependencies()
        deps.python_version = check_text(owner, "python_version", python_version, example="3.11", optional=True)
        for p in pips:
            deps.add_pip_package(p)
        for c in condas:
            deps.add_conda_package(c)
        return deps

    def add_pip_package(self, pip_package: str) -> None:
        self._pip.append(_package("add_pip_package", "pip_package", pip_package, example="numpy==1.26"))

    def add_conda_package(self, conda_package: str) -> None:
        self._conda.append(_package("add_conda_package", "conda_package", conda_package, example="scipy=1.13"))

    def add_channel(self, channel: str) -> None:
        """Accepted and ignored: packages come from pip."""

    @property
    def pip_packages(self) -> list[str]:
        return list(self._pip)

    @property
    def conda_packages(self) -> list[str]:
        return list(self._conda)

    def requirements(self) -> list[str]:
        """The pip requirements of the environment this becomes."""
        out = [p.strip() for p in self._pip if p.strip() and not p.strip().startswith("-")]
        for conda in self._conda:
            name, _, version = conda.strip().partition("=")
            if name.lower() not in _CONDA_ONLY:
                out.append(f"{name}=={version.lstrip('=')}" if version else name)
        return [p for p in out if not _SDK_PACKAGE.match(p)]

    def _load(self, path: str) -> None:
        import yaml

        spec = yaml.safe_load(_read_file("CondaDependencies", "conda_dependencies_file_path", path)) or {}
        if not isinstance(spec, dict):
            raise ConfigError(
                f"CondaDependencies: conda_dependencies_file_path {shown(path)} holds {type(spec).__name__}, not a "
                "conda environment file (a mapping with 'dependencies:'); give the path of an environment.yml"
            )
        owner = f"CondaDependencies({shown(path)})"
        for dep in check_list(owner, "dependencies", spec.get("dependencies"), example="['numpy', {'pip': [...]}]"):
            if isinstance(dep, dict):
                self._pip += check_str_list(owner, "pip", dep.get("pip"), example="numpy")
            elif str(dep).startswith("python="):
                self.python_version = str(dep).partition("=")[2]
            else:
                self._conda.append(str(dep))


def _package(method: str, argument: str, value: object, *, example: str) -> str:
    """One package requirement: a string (a number or a list would be taken apart, or fail when installed)."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"CondaDependencies.{method}: {argument} {shown(value)} must be a non-empty string, e.g. "
            f"{method}({example!r})"
        )
    return value


def _read_file(owner: str, argument: str, path: object) -> str:
    """The text of a file a DAG file names, or an error naming the argument, the path and the fix."""
    if not isinstance(path, (str, os.PathLike)):
        raise ConfigError(f"{owner}: {argument} {shown(path)} must be the path of a file, e.g. 'environment.yml'")
    try:
        with open(path) as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(
            f"{owner}: {argument} {shown(os.fspath(path))} cannot be read ({exc.strerror or exc}); give the path of "
            "an existing file (a relative path is read from the current folder)"
        ) from None


class PythonSection:
    def __init__(self) -> None:
        self.conda_dependencies: CondaDependencies = CondaDependencies()
        self.user_managed_dependencies = False
        self.interpreter_path = "python"


class DockerSection:
    def __init__(self) -> None:
        self.enabled = False
        self.base_image: str | None = None
        self.base_dockerfile: str | None = None
        self.shm_size: str | None = None


class Environment:
    """v1's ``Environment``: ``python.conda_dependencies``, ``docker.base_image``, ``environment_variables``."""

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.version: str | None = None
        self.python = PythonSection()
        self.docker = DockerSection()
        self.environment_variables: dict[str, str] = {}

    @staticmethod
    def from_conda_specification(name: str, file_path: str) -> Environment:
        env = Environment(name)
        env.python.conda_dependencies = CondaDependencies(file_path)
        return env

    @staticmethod
    def from_pip_requirements(name: str, file_path: str, pip_version: str | None = None) -> Environment:
        env = Environment(name)
        for line in _read_file("Environment.from_pip_requirements", "file_path", file_path).splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                env.python.conda_dependencies.add_pip_package(line)
        return env

    @staticmethod
    def get(workspace: Any, name: str, version: str | None = None, label: str | None = None) -> Environment:
        raise ConfigError(
            f"Environment.get(ws, {name!r}): there are no registered or curated environments here; build the "
            "environment in the DAG file (Environment(...), CondaDependencies.create(pip_packages=[...])) or give "
            "its image (env.docker.base_image = '...') for DockerCompute/KubernetesCompute"
        )

    def register(self, workspace: Any) -> Environment:
        """Accepted: environments live in DAG files."""
        return self

    def to_mlpipe(self) -> _Environment:
        user_python = self.python.interpreter_path if self.python.user_managed_dependencies else None
        packages = [] if self.python.user_managed_dependencies else self.python.conda_dependencies.requirements()
        return _Environment(
            name=self.name,
            image=self.docker.base_image,
            pip_packages=packages,
            env_vars={str(k): str(v) for k, v in self.environment_variables.items()},
            python=None if user_python in (None, "python") else user_python,
        )


class RunConfiguration:
    """v1's ``RunConfiguration``: ``.environment`` (v1 ``Environment``) and ``.target`` (a name or target)."""

    def __init__(self, conda_dependencies: CondaDependencies | None = None, **kwargs: Any) -> None:
        self.environment = Environment()
        if conda_dependencies is not None:
            self.environment.python.conda_dependencies = conda_dependencies
        self.target: Any = "local"
        self.node_count = 1

    def to_mlpipe(self, overrides: Mapping[str, _ComputeTarget] | None = None) -> _RunConfiguration:
        env = self.environment.to_mlpipe() if isinstance(self.environment, Environment) else self.environment
        return _RunConfiguration(environment=env, target=resolve_compute(self.target, overrides))


class ScriptRunConfig:
    """v1's ``ScriptRunConfig``: ``Experiment(ws, name).submit(config)`` makes a DAG of this one script."""

    def __init__(
        self,
        source_directory: str | os.PathLike[str],
        script: str | None = None,
        arguments: list[Any] | None = None,
        run_config: RunConfiguration | None = None,
        compute_target: Any = None,
        environment: Environment | None = None,
        **kwargs: Any,
    ) -> None:
        if not script:
            raise ConfigError("ScriptRunConfig: give script='train.py' (command= is not supported)")
        self.source_directory = os.fspath(source_directory)
        self.script = check_relative_file(
            "ScriptRunConfig", "script", script, inside="source_directory", example="train.py"
        )
        self.arguments = check_list("ScriptRunConfig", "arguments", arguments, example="['--lr', 0.1]")
        self.run_config = run_config or RunConfiguration()
        if environment is not None:
            self.run_config.environment = environment
        if compute_target is not None:
            self.run_config.target = compute_target
