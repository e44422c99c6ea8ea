"""Azure ML SDK v1 compatibility.

``azureml_shim/`` holds an ``azureml`` top-level package (``azureml.core``) that the step runner puts on the step
script's ``PYTHONPATH`` when the step asks for it (``azureml_compat=True``, the default) and the script's
interpreter has no real ``azureml.core``: SDK v1 step scripts (``from azureml.core import Run``) then run unchanged.
The classes behind it live in :mod:`airflow_mlpipe.compat.core`; ``airflow_mlpipe.v1`` is the pipeline side.
"""

from __future__ import annotations

from airflow_mlpipe.compat.shim import SHIM_PATH, azureml_compat_env, real_azureml_installed

__all__ = ["SHIM_PATH", "azureml_compat_env", "real_azureml_installed"]
