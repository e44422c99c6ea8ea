"""A real Airflow deployment (api-server, scheduler, dag-processor, triggerer) per test module of this folder."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.scheduler import AirflowServices

SCHEDULER_DAGS = Path(__file__).resolve().parent.parent / "scheduler_dags"


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

    def arm(self, run_id: str, phase: str, dag_id: str = "attempt_steps") -> None:
        (self.faults / f"{dag_id}.{run_id}.{phase}").touch()


def deploy(home: Path, extra_env: dict[str, str]) -> Iterator[Deployment]:
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
    services = AirflowServices(home / "airflow", SCHEDULER_DAGS, env)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_HOME", services.env["MLPIPE_HOME"])
        for key, value in extra_env.items():
            if key.startswith("AIRFLOW_CONN_"):
                patch.setenv(key, value)
        resolve.clear_cache()
        services.start()
        try:
            services.wait_for_dags("attempt_steps", "attempt_mapped")
            yield Deployment(services, Datastore.get_default(), faults, home / "executed.txt", pids)
        finally:
            services.stop()
            resolve.clear_cache()


@pytest.fixture(scope="module")
def local_deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from deploy(tmp_path_factory.mktemp("deploy-local"), {})
