"""``azureml.core.run``."""

from airflow_mlpipe.compat.core import Run

__all__ = ["Run"]
