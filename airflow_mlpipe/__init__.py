"""airflow-mlpipe: Azure ML SDK v1 style ML pipelines on Apache Airflow 3.

Public names are imported lazily (PEP 562) so that a DAG file importing one of them does not pay for the rest.
"""

from __future__ import annotations

import importlib
from typing import Any

from airflow_mlpipe.version import __version__

_EXPORTS: dict[str, str] = {
    "Datastore": "airflow_mlpipe.storage.datastore",
    "DatastoreHook": "airflow_mlpipe.hooks.datastore",
    "Dataset": "airflow_mlpipe.datasets.dataset",
    "FileDataset": "airflow_mlpipe.datasets.dataset",
    "TabularDataset": "airflow_mlpipe.datasets.dataset",
    "DatasetConsumptionConfig": "airflow_mlpipe.datasets.consumption",
    "OutputFileDatasetConfig": "airflow_mlpipe.datasets.output",
    "PipelineParameter": "airflow_mlpipe.steps.params",
    "PythonScriptOperator": "airflow_mlpipe.operators.python_script",
    "DataTransferOperator": "airflow_mlpipe.operators.data_transfer",
    "ParallelRunConfig": "airflow_mlpipe.parallel.config",
    "ParallelRunStep": "airflow_mlpipe.operators.parallel_run",
    "ParallelRunOperator": "airflow_mlpipe.operators.parallel_run",
    "ReuseSensor": "airflow_mlpipe.sensors.reuse",
    "RegisterDatasetOperator": "airflow_mlpipe.operators.register_dataset",
    "DatastoreCleanupOperator": "airflow_mlpipe.operators.datastore_cleanup",
    "Run": "airflow_mlpipe.run",
    "LocalCompute": "airflow_mlpipe.compute.local",
    "DockerCompute": "airflow_mlpipe.compute.docker",
    "KubernetesCompute": "airflow_mlpipe.compute.kubernetes",
    "Environment": "airflow_mlpipe.compute.environment",
    "RunConfiguration": "airflow_mlpipe.compute.environment",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'airflow_mlpipe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
