"""A real Airflow deployment (api-server, scheduler, dag-processor, triggerer) per test module of this folder."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.compute.kubernetes import datastore_secret_manifest
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore
from tests.kubernetes_env import KubernetesEnv
from tests.postgres import PostgresCluster
from tests.scheduler import AirflowServices

SCHEDULER_DAGS = Path(__file__).resolve().parent.parent / "scheduler_dags"
LOCAL_DAGS = (
    "attempt_steps",
    "attempt_mapped",
    "attempt_scribble",
    "attempt_fixed",
    "attempt_transfer",
    "native_daily",
    "native_dedup",
    "native_form",
)


@dataclass
class Deployment:
    services: AirflowServices
    store: Datastore
    faults: Path
    counter: Path
    pids: Path

    def executions(self, case: str) -> list[str]:
        """The tries that executed the script of ``case`` (``["try1", "try2"]``)."""
        lines = self.counter.read_text().splitlines() if self.counter.exists() else []
        return [line.split()[1] for line in lines if line.split()[0] == case]

    def executions_of(self, task: str) -> list[str]:
        """The lines a step of tests/scheduler_dags/steps/daily.py wrote: ``<task>:<day> try<n>``."""
        lines = self.counter.read_text().splitlines() if self.counter.exists() else []
        return [line for line in lines if line.startswith(f"{task}:")]

    def arm(self, run_id: str, phase: str, dag_id: str = "attempt_steps") -> None:
        (self.faults / f"{dag_id}.{run_id}.{phase}").touch()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="mlpipe-pg-")))
    cluster.start()
    yield cluster
    cluster.stop()


def deploy(home: Path, extra_env: dict[str, str], database: str, dags: tuple[str, ...] = ()) -> Iterator[Deployment]:
    """Start the services with ``extra_env`` (datastore connections...), and point this process's library calls at
    the same default datastore, so that assertions read what the steps wrote."""
    faults, pids = home / "faults", home / "pids"
    faults.mkdir(parents=True)
    pids.mkdir()
    env = {
        "MLPIPE_FAULT_DIR": str(faults),
        "MLPIPE_TEST_COUNTER": str(home / "executed.txt"),
        "MLPIPE_TEST_PIDS": str(pids),
        **extra_env,
    }
    services = AirflowServices(home / "airflow", SCHEDULER_DAGS, env, database=database, migrated=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_HOME", services.env["MLPIPE_HOME"])
        for key, value in extra_env.items():
            if key.startswith(("AIRFLOW_CONN_", "MLPIPE_REUSE_")):
                patch.setenv(key, value)
        resolve.clear_cache()
        services.start()
        try:
            services.wait_for_dags(*LOCAL_DAGS, *dags)
            yield Deployment(services, Datastore.get_default(), faults, home / "executed.txt", pids)
        finally:
            services.stop()
            resolve.clear_cache()


@pytest.fixture(scope="module")
def local_deployment(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresCluster) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("deploy-local")
    yield from deploy(home, {}, postgres.create_database(f"airflow_{home.name.replace('-', '_')}"))


@pytest.fixture(scope="module")
def azure_deployment(
    tmp_path_factory: pytest.TempPathFactory, azurite: Any, kubernetes_env: KubernetesEnv, postgres: PostgresCluster
) -> Iterator[Deployment]:
    """The default datastore on Azurite, pods on the in-memory Kubernetes API server, and short leases (a
    holder that stops heartbeating loses its lease after 6 s)."""
    store = make_azurite_datastore(azurite, name="mlpipe_default")
    namespace = kubernetes_env.new_namespace()
    for suffix in ("lease", "latest", "reattach", "env"):
        manifest = datastore_secret_manifest("mlpipe-datastores", [store.config], namespace=f"{namespace}-{suffix}")
        kubernetes_env.create_secret(manifest)
    env = {
        "AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps(
            {"conn_type": "mlpipe_datastore", "extra": {"url": store.config.url, **store.config.storage_options}}
        ),
        "KUBECONFIG": str(kubernetes_env.kubeconfig),
        "MLPIPE_TEST_K8S_NAMESPACE": namespace,
        "MLPIPE_REUSE_LEASE_TTL": "6",
        "MLPIPE_REUSE_CLOCK_SKEW": "0",
        "MLPIPE_REUSE_POLL_INTERVAL": "1",
    }
    dags = ("attempt_pod_lease", "attempt_pod_latest", "attempt_pod_reattach", "attempt_pod_env")
    home = tmp_path_factory.mktemp("deploy-azure")
    yield from deploy(home, env, postgres.create_database(f"airflow_{home.name.replace('-', '_')}"), dags)
