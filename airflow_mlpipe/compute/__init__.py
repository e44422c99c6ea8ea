"""Compute targets: where a step's process runs. One launch description, thin launchers per target.

Everything exported here is a frozen value (no Kubernetes, Docker or provider import), so DAG files can define
compute targets and environments at parse time for free; the operator builders import the providers when called.
"""

from airflow_mlpipe.compute.base import ComputeTarget, StepLaunch
from airflow_mlpipe.compute.docker import DockerCompute
from airflow_mlpipe.compute.environment import Environment, RunConfiguration
from airflow_mlpipe.compute.k8s_spec import WORKLOAD_IDENTITY
from airflow_mlpipe.compute.kubernetes import KubernetesCompute
from airflow_mlpipe.compute.local import LocalCompute

__all__ = [
    "WORKLOAD_IDENTITY",
    "ComputeTarget",
    "DockerCompute",
    "Environment",
    "KubernetesCompute",
    "LocalCompute",
    "RunConfiguration",
    "StepLaunch",
]
