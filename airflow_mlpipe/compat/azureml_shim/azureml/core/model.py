"""``azureml.core.model``."""

from airflow_mlpipe.compat.core import Model

__all__ = ["Model"]
