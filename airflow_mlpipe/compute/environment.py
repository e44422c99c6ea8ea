"""``Environment`` and ``RunConfiguration``: the software a step runs with, apart from the hardware it runs on.

As in Azure ML SDK v1, an environment names an image, pip packages and environment variables, and a run
configuration pairs an environment with a compute target. Both are frozen values checked when they are built
(in the DAG file), and both describe themselves as JSON for run records and reuse keys.

On ``LocalCompute`` the pip packages go into a cached virtualenv (``compute.venv.python_for_environment``); a
container target (``DockerCompute``, ``KubernetesCompute``) runs the environment's image, which must already hold
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_mlpipe.compute.base import ComputeTarget
from airflow_mlpipe.compute.validation import check_env, check_image, description_hash
from airflow_mlpipe.core.secrets import scrub_text, scrubbed_repr
from airflow_mlpipe.exceptions import ConfigError


def _check_requirement(text: object, *, what: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{what}: {text!r} is not a pip requirement; write e.g. 'pandas==2.2.3'")
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        requirement = Requirement(text.strip())
    except InvalidRequirement as exc:
        raise ConfigError(
            f"{what}: {text!r} is not a pip requirement ({exc}); write 'name', 'name==1.2', 'name>=1,<2' or "
            "'name @ https://host/name-1.2-py3-none-any.whl'"
        ) from None
    if scrub_text(text) != text:
        raise ConfigError(
            f"{what}: {text!r} holds a credential in its URL, which would be written into the step's spec, records "
            "and logs; give pip its credentials where it looks for them on the worker or in the image (a netrc "
            "file, PIP_INDEX_URL / PIP_EXTRA_INDEX_URL in the environment, or a keyring)"
        )
    for spec in requirement.specifier:
        # "pandas====" parses as arbitrary equality (===) with the version "=", which no release has
        if spec.operator == "===" and not any(c.isalnum() for c in spec.version):
            raise ConfigError(
                f"{what}: {text!r} asks for version {spec.version!r} by arbitrary equality (===), which no release "
                f"has; write e.g. '{requirement.name}==1.2'"
            )
    return text.strip()


def _check_python(value: object, *, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or any(c.isspace() for c in value):
        raise ConfigError(
            f"{what}: python {value!r} is not an interpreter name or path; write e.g. 'python3' or "
            "'/opt/conda/bin/python'"
        )
    return value


class HasKind(Protocol):
    """A compute target, as far as environments care."""

    kind: str


@scrubbed_repr
@dataclass(frozen=True)
class Environment:
    """The software a step runs with (Azure ML's ``Environment``).

    :param name: a label for run records and the UI, e.g. ``"sklearn-1.5"``.
    :param image: the container image for ``DockerCompute``/``KubernetesCompute`` (it wins over the compute
        target's default image); ignored by ``LocalCompute``.
    :param pip_packages: pip requirements (``"pandas==2.2.3"``). ``LocalCompute`` installs them into a virtualenv
        created once per package set and Python version; container targets need them in the image. Kept
        sorted and without duplicates: pip installs a set, so the order does not change the environment.
    :param env_vars: environment variables for the step's process. A container target refuses one that holds a
        credential (its name says so, ``HF_TOKEN``, or its value shows one): pass those through the target's
        secret mechanism. On ``LocalCompute`` such a variable's value never reaches the step's spec or records
        (a digest of it is keyed instead; see docs/security.md).
    :param python: the interpreter to run: a name on ``PATH`` or a path. Default: the Airflow worker's own
        interpreter on ``LocalCompute``, ``python`` in a container.
    """

    name: str | None = None
    image: str | None = None
    pip_packages: Sequence[str] = ()
    env_vars: Mapping[str, str] = field(default_factory=dict)
    python: str | None = None

    def __post_init__(self) -> None:
        what = f"Environment({self.name!r})" if self.name else "Environment"
        if self.name is not None and (not isinstance(self.name, str) or not self.name.strip()):
            raise ConfigError(f"Environment name {self.name!r} must be a non-empty string or None")
        if self.image is not None:
            check_image(self.image, what=what)
        packages: Iterable[object] = self.pip_packages
        if isinstance(packages, (str, Mapping)) or not isinstance(packages, Iterable):
            raise ConfigError(
                f"{what}: pip_packages {packages!r} must be a list of requirements, e.g. ['pandas==2.2.3']"
            )
        object.__setattr__(
            self,
            "pip_packages",
            tuple(sorted({_check_requirement(p, what=f"{what} pip_packages") for p in packages})),
        )
        object.__setattr__(self, "env_vars", check_env(self.env_vars, what=f"{what} env_vars"))
        object.__setattr__(self, "python", _check_python(self.python, what=what))

    __hash__ = description_hash

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "pip_packages": list(self.pip_packages),
            "env_vars": dict(sorted(self.env_vars.items())),
            "python": self.python,
        }

    def describe(self) -> dict[str, Any]:
        """A JSON-able description for run records and reuse keys (environments hold no credentials)."""
        return self.to_dict()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        return cls(
            name=data.get("name"),
            image=data.get("image"),
            pip_packages=tuple(data.get("pip_packages") or ()),
            env_vars=dict(data.get("env_vars") or {}),
            python=data.get("python"),
        )


@scrubbed_repr
@dataclass(frozen=True)
class RunConfiguration:
    """An environment and a compute target for a step (Azure ML's ``RunConfiguration``).

    Define run configurations (and compute targets) once in a module next to the DAGs and import them in every
    DAG that needs them: they are frozen values, so sharing one is safe.
    """

    environment: Environment | None = None
    target: ComputeTarget | None = None

    def __post_init__(self) -> None:
        if self.environment is not None and not isinstance(self.environment, Environment):
            raise ConfigError(
                f"RunConfiguration: environment {self.environment!r} is not an Environment; write "
                "Environment(pip_packages=[...]) or leave it out"
            )
        if self.target is not None and not isinstance(self.target, ComputeTarget):
            raise ConfigError(
                f"RunConfiguration: target {self.target!r} is not a compute target; use LocalCompute(), "
                "DockerCompute(...) or KubernetesCompute(...)"
            )
        check_environment_fits(self.environment, self.target)

    __hash__ = description_hash

    def merged(
        self, *, environment: Environment | None = None, target: ComputeTarget | None = None
    ) -> RunConfiguration:
        """This configuration with a step's own ``environment``/``compute_target`` arguments taking precedence."""
        return RunConfiguration(
            environment=environment if environment is not None else self.environment,
            target=target if target is not None else self.target,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment.to_dict() if self.environment else None,
            "target": self.target.describe() if self.target else None,
        }

    def describe(self) -> dict[str, Any]:
        return self.to_dict()


def check_environment_fits(environment: Environment | None, target: HasKind | None) -> None:
    """Refuse an environment that the target cannot provide (pip packages are installed only on local compute),
    or whose variables the target would show (``check_no_secret_variables``)."""
    check_no_secret_variables(environment, target)
    if environment is None or target is None or target.kind == "local" or not environment.pip_packages:
        return
    raise ConfigError(
        f"Environment{f'({environment.name!r})' if environment.name else ''} asks for pip packages "
        f"{list(environment.pip_packages)!r}, but a {target.kind} step runs its image as it is: build an image "
        "that contains them and set Environment(image=...) without pip_packages, or run the step on LocalCompute()"
    )


def check_no_secret_variables(environment: Environment | None, target: HasKind | None) -> None:
    """Refuse ``env_vars`` named as credentials (``HF_TOKEN``) on a container target, which writes them into the
    container's spec: the target's own secret mechanism passes them instead."""
    if environment is None or target is None:
        return
    from airflow_mlpipe.compute.containers import ENV_PART, SECRET_ENV_FIXES, assert_no_credentials

    fix = SECRET_ENV_FIXES.get(target.kind)
    if fix is not None:
        what = f"Environment({environment.name!r})" if environment.name else "Environment"
        assert_no_credentials((), {ENV_PART: environment.env_vars}, what=f"{what} on {target.kind}", secret_fix=fix)
