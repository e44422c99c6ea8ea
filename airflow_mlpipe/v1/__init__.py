"""Azure ML SDK v1 pipeline definitions on Airflow, with only the imports changed.

Where v1 code imported from ``azureml.core``, ``azureml.data``, ``azureml.pipeline.core`` and
``azureml.pipeline.steps``, import the same names from here::

    from airflow_mlpipe.v1 import (
        Dataset, Datastore, Experiment, OutputFileDatasetConfig, Pipeline, PipelineParameter, PythonScriptStep,
        RunConfiguration, Workspace,
    )

``Experiment(ws, name).submit(pipeline)`` then defines the Airflow DAG (see ``v1.pipeline``). The step scripts
keep ``from azureml.core import Run``: the compatibility package (``airflow_mlpipe.compat``) serves it.
"""

from __future__ import annotations

from airflow_mlpipe.compat.core import Dataset, Datastore, Model, Run, Workspace
from airflow_mlpipe.compat.data import DataPath, DataPathComputeBinding, DataReference
from airflow_mlpipe.v1.environment import (
    AmlCompute,
    ComputeTarget,
    ComputeTargetException,
    CondaDependencies,
    Environment,
    RunConfiguration,
    ScriptRunConfig,
    set_compute_target,
)
from airflow_mlpipe.v1.pipeline import Experiment, Pipeline, PipelineRun
from airflow_mlpipe.v1.steps import (
    DatasetConsumptionConfig,
    DataTransferStep,
    OutputFileDatasetConfig,
    ParallelRunConfig,
    ParallelRunStep,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
)

__all__ = [
    "AmlCompute",
    "ComputeTarget",
    "ComputeTargetException",
    "CondaDependencies",
    "DataPath",
    "DataPathComputeBinding",
    "DataReference",
    "DataTransferStep",
    "Dataset",
    "DatasetConsumptionConfig",
    "Datastore",
    "Environment",
    "Experiment",
    "Model",
    "OutputFileDatasetConfig",
    "ParallelRunConfig",
    "ParallelRunStep",
    "Pipeline",
    "PipelineData",
    "PipelineParameter",
    "PipelineRun",
    "PythonScriptStep",
    "Run",
    "RunConfiguration",
    "ScriptRunConfig",
    "Workspace",
    "set_compute_target",
]
