"""``azureml.core.workspace``."""

from airflow_mlpipe.compat.core import Workspace

__all__ = ["Workspace"]
