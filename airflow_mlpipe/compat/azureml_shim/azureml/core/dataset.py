"""``azureml.core.dataset``."""

from airflow_mlpipe.compat.core import Dataset

__all__ = ["Dataset"]
