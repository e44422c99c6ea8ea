"""``azureml.core`` for step scripts, backed by airflow-mlpipe (see ``airflow_mlpipe.compat.core``)."""

from airflow_mlpipe.compat.core import (
    Dataset,
    Datastore,
    Environment,
    Experiment,
    Model,
    Run,
    Workspace,
)

__all__ = ["Dataset", "Datastore", "Environment", "Experiment", "Model", "Run", "Workspace"]
