"""The example pipeline on a CeleryExecutor (Redis as the broker, a Celery worker running the tasks) against a real
scheduler, with the default datastore on Azurite: what the compose stack and a Helm deployment with Celery run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES
from tests.attempts.conftest import PostgresCluster
from tests.conftest import make_azurite_datastore
from tests.emulators import Redis
from tests.scheduler import COMPONENTS, AirflowServices

DAG = "mlpipe_example_pipeline"


@pytest.fixture(scope="module")
def celery(
    tmp_path_factory: pytest.TempPathFactory, azurite: Any, postgres: PostgresCluster
) -> Iterator[tuple[AirflowServices, Datastore]]:
    redis = Redis()
    redis.start()
    store = make_azurite_datastore(azurite, name="mlpipe_default")
    conn = {"conn_type": "mlpipe_datastore", "host": store.config.url, "extra": dict(store.config.storage_options)}
    database = postgres.create_database("airflow_celery")
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": redis.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database.replace("+psycopg2", ""),
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps(conn),
    }
    services = AirflowServices(
        tmp_path_factory.mktemp("celery") / "airflow",
        EXAMPLES,
        env,
        database=database,
        migrated=True,
        components=(*COMPONENTS, "celery worker"),
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_MLPIPE_DEFAULT", env["AIRFLOW_CONN_MLPIPE_DEFAULT"])
        resolve.clear_cache()
        services.start()
        try:
            services.wait_for_dags(DAG)
            yield services, Datastore.get_default()
        finally:
            services.stop()
            redis.stop()
            resolve.clear_cache()


def test_the_example_pipeline_runs_on_celery_workers(celery: tuple[AirflowServices, Datastore]) -> None:
    services, store = celery
    run_id = services.trigger(DAG, "on-celery")
    state = services.wait_for_runs(DAG, [run_id], timeout=300)[run_id]
    assert state == "success", services.log_tail("celery worker")
    tis = {t["task_id"]: t for t in services.task_instances(DAG, run_id)}
    assert {t["state"] for t in tis.values()} == {"success"}
    assert all(t["executor"] in (None, "CeleryExecutor") for t in tis.values())
    worker_log = (services.home / "celery-worker.log").read_text(errors="replace")
    for task in ("data_prep", "train", "compare"):  # the Celery worker ran them
        assert tis[task]["id"] in worker_log, task
        result = services.api("GET", f"/dags/{DAG}/dagRuns/{run_id}/taskInstances/{task}/xcomEntries/return_value")
        record = records.read_record(json.loads(result["value"])["step_run_id"] if isinstance(result["value"], str)
                                     else result["value"]["step_run_id"], store)  # fmt: skip
        assert record["status"] == "Completed" and store.is_complete(record["outputs"][0]["path"])
    assert store.url.startswith("az://")
    assert DatasetRegistry(store).get("iris_model").lineage["run_id"] == run_id
