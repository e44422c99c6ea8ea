"""``azureml.core.datastore``."""

from airflow_mlpipe.compat.core import Datastore

__all__ = ["Datastore"]
