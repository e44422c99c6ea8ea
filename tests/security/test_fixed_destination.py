"""The bytes a registered version names never change: a fixed destination (no ``{run-id}``) that holds a committed,
registered output is refused to every other step run, in the same DAG run and in the next one."""

from __future__ import annotations

from pathlib import Path

from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import airflow_dags_test, last_run_states

DAGS = Path(__file__).parent / "dags"


def test_a_second_step_run_never_overwrites_a_registered_fixed_destination(
    airflow_db: Path, local_home: dict[str, str], default_store: Datastore
) -> None:
    env, store = local_home, default_store

    first = airflow_dags_test("security_fixed", dags_folder=DAGS, env=env, check=False)
    output = first.stdout + first.stderr
    assert "DagRun Finished" in output, output[-6000:]
    finished = [line for line in output.splitlines() if "DagRun Finished" in line]
    assert "dag_id=security_fixed" in finished[-1] and "state=failed" in finished[-1], finished
    assert last_run_states("security_fixed")[1] == {"first": "success", "second": "failed"}
    assert "registered as dataset 'latest_model' version 1" in output
    assert "add {run-id} to the destination" in output
    # the failure is one ERROR line that says it, then Airflow's "Task exited": no traceback, no other error
    errors = [line for line in output.splitlines() if "[error" in line]
    assert "already holds the committed output" in errors[0] and "Task exited" in errors[1], errors
    assert len(errors) == 2 and "Traceback" not in output, errors
    assert "Left out of the snapshot, as they look like secrets: .env, secrets.json" in output
    version = DatasetRegistry(store).get("latest_model", 1)
    assert store.read_text("models/latest/weights.txt") == "weights by first\n"

    second = airflow_dags_test(
        "security_fixed", dags_folder=DAGS, env=env, conf={"regenerate_outputs": True}, check=False
    )
    assert last_run_states("security_fixed")[1]["first"] == "failed"
    assert "registered as dataset 'latest_model' version 1" in second.stdout + second.stderr
    assert store.read_text("models/latest/weights.txt") == "weights by first\n"
    assert DatasetRegistry(store).get("latest_model", "latest") == version
    assert [e.path for e in version.manifest.entries] == ["models/latest/weights.txt"]
