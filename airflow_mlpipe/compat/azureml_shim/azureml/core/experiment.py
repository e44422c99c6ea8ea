"""``azureml.core.experiment``."""

from airflow_mlpipe.compat.core import Experiment

__all__ = ["Experiment"]
