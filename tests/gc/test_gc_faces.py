"""``mlpipe gc`` (text and ``--json``) and ``DatastoreCleanupOperator``: thin faces of ``collect_garbage``."""

from __future__ import annotations

import json
import runpy

import pytest

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.datastore_cleanup import DatastoreCleanupOperator
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES
from tests.gc.helpers import Runs, age_files, ago, files
from tests.reuse.reuse_helpers import mlpipe_in_process


@pytest.fixture
def old_and_new(store: Datastore, runs: Runs) -> tuple[str, str]:
    old = runs.make("train", "fit", "r1", created=ago(days=60))
    new = runs.make("train", "fit", "r2", created=ago(days=5), source="print('v2')")
    age_files(store, days=60)
    return old.srid, new.srid


def test_cli_dry_run_prints_groups_with_sizes_and_rules(store: Datastore, old_and_new: tuple[str, str]) -> None:
    before = files(store)

    code, text = mlpipe_in_process("gc", "--older-than", "30d", "--dry-run")

    assert code == 0, text
    assert files(store) == before
    assert "dry run" in text and "2 step runs scanned, 1 to sweep" in text
    lines = text.splitlines()
    header = next(n for n, line in enumerate(lines) if line.startswith("KIND"))
    kinds = [line.split("  ")[0] for line in lines[header + 1 :] if line and not line.startswith(("kept", "note"))]
    assert kinds[0] == "reuse index entry" and kinds[-1] == "step run"
    assert any("train" in line and "older than 30d" in line and "B" in line for line in lines)
    assert "kept step runs: 1 newer than 30d" in text


def test_cli_json_then_a_real_run_reports_bytes_reclaimed(store: Datastore, old_and_new: tuple[str, str]) -> None:
    old, new = old_and_new
    code, out = mlpipe_in_process("gc", "--older-than", "30d", "--dry-run", "--json")
    assert code == 0, out
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["deleted"] == 0 and dry["runs_swept"] == 1
    assert {i["step_run_id"] for i in dry["items"] if i["kind"] == "step run"} == {old}
    assert sum(g["bytes"] for g in dry["groups"]) == dry["bytes"] > 0

    code, out = mlpipe_in_process("gc", "--older-than", "30d", "--json")

    done = json.loads(out)
    assert code == 0 and done["dry_run"] is False
    assert done["deleted"] == len(dry["items"]) and done["bytes_reclaimed"] == dry["bytes"]
    assert not store.exists(records.run_folder(old)) and store.exists(records.run_folder(new))
    code, text = mlpipe_in_process("gc", "--older-than", "30d")
    assert code == 0 and "deleted 0 items, reclaimed 0 B" in text


def test_operator_runs_the_same_function(store: Datastore, old_and_new: tuple[str, str]) -> None:
    old, new = old_and_new
    preview = DatastoreCleanupOperator(task_id="preview", older_than="30d", dry_run=True)
    assert preview.execute({})["deleted"] == 0  # type: ignore[arg-type]
    assert store.exists(records.run_folder(old))

    result = DatastoreCleanupOperator(task_id="cleanup", older_than="30d", keep_last=0).execute({})  # type: ignore[arg-type]

    assert result["deleted"] > 0 and result["bytes_reclaimed"] > 0 and "items" not in result
    assert not store.exists(records.run_folder(old)) and store.exists(records.run_folder(new))


def test_operator_refuses_a_bad_duration_when_parsed() -> None:
    with pytest.raises(ConfigError, match="'a month' is not a duration"):
        DatastoreCleanupOperator(task_id="cleanup", older_than="a month")


def test_the_example_maintenance_dag_previews_then_cleans_and_starts_paused() -> None:
    dag = runpy.run_path(str(EXAMPLES / "datastore_cleanup.py"))["cleanup"].dag
    preview, cleanup = dag.get_task("preview"), dag.get_task("cleanup")
    assert isinstance(cleanup, DatastoreCleanupOperator) and preview.report_only and not cleanup.report_only
    assert preview.downstream_task_ids == {"cleanup"} and dag.is_paused_upon_creation
