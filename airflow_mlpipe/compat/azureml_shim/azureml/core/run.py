"""``azureml.core.run``."""

from airflow_mlpipe.compat.core import Run, _OfflineRun

__all__ = ["Run", "_OfflineRun"]
