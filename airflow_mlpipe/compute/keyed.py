"""The software a step's process runs with, as its reuse key sees it: everything that reaches the process.

The image (the environment's, else the compute target's), the pip packages, every plain environment variable
that reaches the process (the compute target's ``env`` and the environment's ``env_vars``, as the container
sees them: the environment's win) and the interpreter. Not the hardware (GPU count, memory, node pool): where a
step runs does not change what it computes. Not credentials: they never travel in plain variables to a
container. A ``LocalCompute`` variable that holds one (``HF_TOKEN``, a URL with a password) is keyed, and written
into the spec, as a digest of its value (``core.secrets.private_digest``): a new value still computes anew, and
the value reaches the runner only through its process environment (``private_variables``).

Not keyed either, so a script's results must not depend on them: the Airflow worker's own environment, which a
``LocalCompute`` step's process inherits (pass settings through ``Environment(env_vars=...)``, which is keyed);
Kubernetes Secrets and ``envFrom`` of a pod (credentials); volumes and mounts (read data as datasets, keyed by
their content).

An image pinned by digest (``repo@sha256:...``) names fixed software; a tag (``repo:1.2``, ``latest``) can be
pushed again, so a tag is keyed as the text it is and reuse explanations say so (``reuse.explain``).
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterable
from typing import Any

from airflow_mlpipe.compute.base import ComputeTarget
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.core.secrets import is_private_variable, private_digest

DEFAULT_CONTAINER_PYTHON = "python"


def step_environment(
    environment: Environment | None, compute: ComputeTarget, known: Iterable[str] = ()
) -> dict[str, Any]:
    """What reaches the step's process, as its spec and reuse key hold it; ``known``: the credentials of the
    step's datastores (a variable holding one is private too)."""
    local = compute.kind == "local"
    image = None
    compute_env: dict[str, str] = {}
    if not local:
        image = environment.image if environment is not None and environment.image else getattr(compute, "image", None)
        compute_env = dict(getattr(compute, "env", None) or {})
    if environment is not None and environment.python:
        python = environment.python
    elif local:
        python = f"{sys.implementation.name}-{platform.python_version()}"
    else:
        python = DEFAULT_CONTAINER_PYTHON
    env_vars = {**compute_env, **(dict(environment.env_vars) if environment is not None else {})}
    if local:
        private = private_variables(environment, compute, known)
        env_vars = {k: private_digest(k, v) if k in private else v for k, v in env_vars.items()}
    return {
        "image": image,
        "pip_packages": list(environment.pip_packages) if environment is not None else [],
        "env_vars": dict(sorted(env_vars.items())),
        "python": python,
    }


def private_variables(
    environment: Environment | None, compute: ComputeTarget, known: Iterable[str] = ()
) -> dict[str, str]:
    """The ``LocalCompute`` variables that hold a credential, with their values: passed to the runner's process
    and never written (container targets refuse them: their secret mechanisms pass credentials instead)."""
    if compute.kind != "local" or environment is None:
        return {}
    known = tuple(known)
    return {k: v for k, v in environment.env_vars.items() if is_private_variable(k, v, known)}
