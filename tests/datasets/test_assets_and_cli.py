"""Datasets through a real Airflow: asset events for new versions, example DAGs, and the ``mlpipe`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from airflow_mlpipe.storage.resolve import mlpipe_home
from tests.airflow_utils import (
    EXAMPLES,
    airflow_dags_test,
    asset_events,
    last_run_states,
    last_run_xcom,
    queued_for_assets,
)


def test_new_version_emits_asset_event_and_queues_consumers(airflow_db: Path) -> None:
    before = len(asset_events("mlpipe://datasets/iris_landing"))
    airflow_dags_test("ds_register")
    assert last_run_states("ds_register") == ("success", {"make_data": "success", "register": "success"})
    events = asset_events("mlpipe://datasets/iris_landing")
    assert len(events) == before + 1
    assert events[-1]["version"] >= 1 and events[-1]["dataset"] == "iris_landing"
    assert events[-1]["manifest"]["files"] == 1 and events[-1]["producer"]["task_id"] == "register"
    # the asset page shows the event's extra: it names the version's page in the ML view
    assert events[-1]["page"] == f"/plugin/ml-pipelines/mlpipe/datasets/iris_landing?version={events[-1]['version']}"
    assert queued_for_assets("ds_consume") >= 1
    xcom = last_run_xcom("ds_register", "register")
    assert xcom["version"] == events[-1]["version"]
    # Unchanged data: the task succeeds, adds no version and sends no event.
    airflow_dags_test("ds_register")
    assert len(asset_events("mlpipe://datasets/iris_landing")) == before + 1
    assert last_run_xcom("ds_register", "register")["created"] is False


def test_example_dataset_pair_runs(airflow_db: Path) -> None:
    airflow_dags_test("mlpipe_dataset_producer", dags_folder=EXAMPLES)
    assert last_run_states("mlpipe_dataset_producer")[0] == "success"
    events = asset_events("mlpipe://datasets/iris_raw")
    assert events and events[-1]["version"] == 1
    assert queued_for_assets("mlpipe_dataset_consumer") >= 1
    airflow_dags_test("mlpipe_dataset_consumer", dags_folder=EXAMPLES)
    assert last_run_xcom("mlpipe_dataset_consumer", "summarize")["rows"] == 150


def _mlpipe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow_mlpipe.cli.main", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        check=False,
    )


def test_cli_lists_and_shows_registered_datasets(airflow_db: Path) -> None:
    from airflow_mlpipe import Dataset, Datastore

    store = Datastore.get_default()
    store.write_text("cli/one.csv", "a\n1\n")
    Dataset.Tabular.from_delimited_files((store, "cli/one.csv")).register("cli_ds", description="for the cli")
    store.write_text("cli/one.csv", "a\n2\n")
    Dataset.Tabular.from_delimited_files((store, "cli/one.csv")).register("cli_ds")

    listed = _mlpipe("datasets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)["datasets"]}
    assert rows["cli_ds"]["latest_version"] == 2 and rows["cli_ds"]["kind"] == "tabular"

    shown = json.loads(_mlpipe("datasets", "show", "cli_ds", "--version", "1", "--json").stdout)
    assert (
        shown["version"] == 1
        and (shown["latest_version"], shown["versions"]) == (2, "1, 2")
        and shown["description"] == "for the cli"
    )
    assert shown["manifest"]["entries"][0]["path"] == "cli/one.csv"

    missing = _mlpipe("datasets", "show", "cli_ds", "--version", "9", "--json")
    assert missing.returncode == 1 and "has no version 9" in json.loads(missing.stdout)["error"]

    human = _mlpipe("datasets", "list")
    assert "cli_ds" in human.stdout and "LATEST_VERSION" in human.stdout

    stores = json.loads(_mlpipe("datastores", "list", "--json").stdout)["datastores"]
    default = next(s for s in stores if s["name"] == "mlpipe_default")
    assert default["url"] == "file://" + str(mlpipe_home() / "datastore")
