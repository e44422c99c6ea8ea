"""``LocalCompute``: the step runs as a subprocess of the Airflow worker (the launcher lives with the operator)."""

from __future__ import annotations

from dataclasses import dataclass

from airflow_mlpipe.compute.base import ComputeTarget


@dataclass(frozen=True)
class LocalCompute(ComputeTarget):
    """Run the step on the Airflow worker itself, in the worker's interpreter or, when the step's environment
    asks for pip packages, in a cached virtualenv (``airflow_mlpipe.compute.venv``). Local datastores
    (``file://``) work here and only here, unless a container mounts them."""

    kind = "local"
