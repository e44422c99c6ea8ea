"""What every compute target receives: the step runner's command line and environment.

The step runner (``python -m airflow_mlpipe.runner``) talks to the world only through datastore URLs and the
step spec stored in the default datastore, so the same ``StepLaunch`` runs as a local subprocess, in a Docker
container or in a Kubernetes pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepLaunch:
    """How to start one step run.

    :param step_name: the Airflow task id (used in pod and container names).
    :param args: the arguments after the Python interpreter, e.g. ``("-m", "airflow_mlpipe.runner", "--spec", P)``.
    :param env: plain, non-secret environment variables for the process.
    :param datastores: names of the datastores the step reads or writes; each needs its connection
        (``AIRFLOW_CONN_<NAME>``) inside the process, delivered by the target's secret mechanism.
    :param seal_key: the key a container's runner seals this step run's records with (``MLPIPE_ATTEMPT_KEY``,
        ``datasets.seal.attempt_seal_key``; None where no registry key is set): Docker gets it in its private
        environment; a pod as a plain variable, good for this one step run only.
    """

    step_name: str
    args: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    datastores: tuple[str, ...] = ()
    seal_key: str | None = field(default=None, repr=False)


class ComputeTarget:
    """Base class of ``LocalCompute``, ``DockerCompute`` and ``KubernetesCompute``."""

    kind: str = "abstract"

    def describe(self) -> dict[str, object]:
        """A JSON-able description for run records (never a credential)."""
        return {"kind": self.kind}
