"""Compute targets: where a step's process runs. One launch description, thin launchers per target.

Everything exported here is a frozen value (no Kubernetes, Docker or provider import), so DAG files can define
compute targets and environments at parse time for free; the operator builders import the providers when called.
Names are imported on first use (PEP 562): a DAG file with only local steps never loads the Docker or Kubernetes
modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "ComputeTarget": "airflow_mlpipe.compute.base",
    "StepLaunch": "airflow_mlpipe.compute.base",
    "DockerCompute": "airflow_mlpipe.compute.docker",
    "Environment": "airflow_mlpipe.compute.environment",
    "RunConfiguration": "airflow_mlpipe.compute.environment",
    "WORKLOAD_IDENTITY": "airflow_mlpipe.compute.k8s_spec",
    "KubernetesCompute": "airflow_mlpipe.compute.kubernetes",
    "LocalCompute": "airflow_mlpipe.compute.local",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_mlpipe.compute' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
