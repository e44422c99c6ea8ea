"""A PythonScriptOperator step on DockerCompute, run for real: the runner executes inside a container."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import airflow_dags_test, last_run_states, last_run_xcom


@pytest.mark.docker
@pytest.mark.usefixtures("airflow_db")
def test_script_step_in_a_container(docker_engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_root = tmp_path / "store"
    store_root.mkdir()
    conn = json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": store_root.as_uri()}})
    env = {
        "AIRFLOW_CONN_MLPIPE_DEFAULT": conn,
        "MLPIPE_TEST_STORE": str(store_root),
        "MLPIPE_TEST_DOCKER_URL": docker_engine,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resolve.clear_cache()
    proc = airflow_dags_test("step_docker", env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert last_run_states("step_docker")[1] == {"hello": "success"}, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = last_run_xcom("step_docker", "hello")
    record = read_record(result["step_run_id"])
    assert record["status"] == "Completed" and record["compute"]["kind"] == "docker"
    assert record["metrics"] == {"answer": 42}
    out = result["outputs"]["greeting"]
    store = Datastore.get_default()
    assert store.is_complete(out["path"]) and store.read_text(out["path"] + "/hello.txt").startswith("hello from ")
    assert DatasetRegistry().get("docker_greeting").version == 1
