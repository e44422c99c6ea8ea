"""OpenLineage: the step operators report what each step run read and wrote, with the openlineage provider
installed and its file transport, and name datasets by OpenLineage's naming spec on every store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlpipe.operators.lineage import dataset_name
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES


def test_each_step_reports_its_inputs_and_outputs(airflow_db: Path, tmp_path: Path) -> None:
    events_file = tmp_path / "openlineage.jsonl"
    transport = {"type": "file", "log_file_path": str(events_file), "append": True}
    env = {
        **os.environ,
        "MLPIPE_HOME": str(tmp_path / "mlpipe"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "dags", "test", "mlpipe_example_pipeline"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    complete = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        if event["eventType"] == "COMPLETE":
            complete[event["job"]["name"].rsplit(".", 1)[-1]] = event
    store_root = str(tmp_path / "mlpipe" / "datastore")

    def names(event: dict[str, object], side: str) -> list[str]:
        found = event.get(side) or []
        assert all(d["namespace"] == "file" for d in found)  # type: ignore[index,union-attr]
        return sorted(d["name"][len(store_root) + 1 :] for d in found)  # type: ignore[index,union-attr]

    assert names(complete["data_prep"], "inputs") == ["samples/iris/iris.csv"]
    (prepped,) = names(complete["data_prep"], "outputs")
    assert prepped.endswith("/prepped")
    assert names(complete["train"], "inputs") == [prepped]
    (model,) = names(complete["train"], "outputs")
    assert sorted(names(complete["compare"], "inputs")) == sorted([model, prepped])


@pytest.mark.parametrize(
    ("url", "options", "namespace", "name"),
    [
        pytest.param("s3://bucket/team", {}, "s3://bucket", "team/out/a", id="s3"),
        pytest.param(
            "az://models/team", {"account_name": "acct"}, "wasbs://models@acct.blob.core.windows.net", "team/out/a",
            id="azure-blob",
        ),
        pytest.param(
            "az://models", {"connection_string": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"},
            "wasbs://models@devstoreaccount1.blob.core.windows.net", "out/a", id="azure-connection-string",
        ),
        pytest.param(
            "abfss://models@acct.dfs.core.windows.net/team", {"account_name": "acct"},
            "abfss://models@acct.dfs.core.windows.net", "team/out/a", id="adls-gen2",
        ),
    ],
)  # fmt: skip
def test_dataset_names_follow_the_spec(url: str, options: dict[str, str], namespace: str, name: str) -> None:
    assert dataset_name(Datastore("d", url, options), "out/a") == (namespace, name)
