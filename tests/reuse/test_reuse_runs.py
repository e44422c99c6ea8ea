"""Step reuse in real Airflow runs (``airflow dags test``): what runs again, what is reused, and why.

The example pipeline checks a plain second run. ``reuse_chain`` (tests/dags) runs from a copy of its step folders
that each test edits; every script execution appends the step's name to a counter file outside the datastore.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import Datastore
from airflow_mlpipe.assets import dataset_asset_uri
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.ui.urls import step_run_page
from tests.airflow_utils import EXAMPLES, TEST_DAGS, airflow_dags_test, asset_events, last_run_states, last_run_xcom
from tests.reuse.reuse_helpers import mlpipe_in_process

EXAMPLE = "mlpipe_example_pipeline"
CHAIN = "reuse_chain"
CHAIN_STEPS = ("prep", "train", "report")


@dataclass
class Pipeline:
    """One private MLPIPE_HOME, source copy and counter; ``run`` triggers the DAG and returns who executed."""

    dag_id: str
    dags_folder: Path
    env: dict[str, str]
    sources: Path
    counter: Path

    def run(self, conf: dict[str, Any] | None = None) -> list[str]:
        before = self.executed()
        airflow_dags_test(self.dag_id, dags_folder=self.dags_folder, conf=conf, env=self.env)
        state, tasks = last_run_states(self.dag_id)
        assert state == "success" and set(tasks.values()) == {"success"}, tasks
        return sorted(self.executed()[len(before) :])

    def executed(self) -> list[str]:
        return self.counter.read_text().split() if self.counter.exists() else []

    def results(self, *tasks: str) -> dict[str, dict[str, Any]]:
        return {t: last_run_xcom(self.dag_id, t) for t in tasks}

    def explain(self, task_id: str, *args: str) -> dict[str, Any]:
        """``mlpipe reuse explain DAG TASK ... --json``."""
        code, printed = mlpipe_in_process("reuse", "explain", self.dag_id, task_id, *args, "--json")
        assert code == 0, printed
        return dict(json.loads(printed))


def _pipeline(dag_id: str, dags_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    sources = tmp_path / "sources"
    shutil.copytree(TEST_DAGS / "reuse_steps", sources)
    env = {
        "MLPIPE_HOME": str(tmp_path / "mlpipe"),
        "MLPIPE_REUSE_SOURCES": str(sources),
        "MLPIPE_REUSE_COUNTER": str(tmp_path / "executed.txt"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resolve.clear_cache()
    return Pipeline(dag_id, dags_folder, env, sources, tmp_path / "executed.txt")


@pytest.fixture
def chain(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pipeline]:
    pipeline = _pipeline(CHAIN, TEST_DAGS, tmp_path, monkeypatch)
    Datastore.get_default().write_text("raw/part-0.csv", "x\n1\n2\n3\n")
    assert pipeline.run() == ["audit", "prep", "report", "train"]
    yield pipeline


def _statuses(pipeline: Pipeline) -> dict[str, str]:
    return {t: read_record(r["step_run_id"])["status"] for t, r in pipeline.results(*CHAIN_STEPS).items()}


def test_example_second_run_reuses_every_step(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    example = _pipeline(EXAMPLE, EXAMPLES, tmp_path, monkeypatch)
    steps = ("data_prep", "train", "compare")
    events_before = len(asset_events(dataset_asset_uri("iris_model")))  # the metadata DB is shared by the session
    example.run()
    first = example.results(*steps)
    assert all(r["status"] == "Completed" and r["reused"] is False for r in first.values())

    example.run()
    second = example.results(*steps)
    for task in steps:
        result, earlier = second[task], first[task]
        assert result["reused"] is True and result["status"] == "Reused"
        assert result["reused_from"] == earlier["step_run_id"]
        assert result["outputs"] == earlier["outputs"]  # downstream as_input()s resolve to the earlier data
        record = read_record(result["step_run_id"])
        assert record["status"] == "Reused" and record["reused_from"] == earlier["step_run_id"]
        assert record["reuse"]["decision"]["hit"] is True and record["reuse"]["key"]
        assert set(record["reuse"]["components"]) >= {"script", "source", "arguments", "inputs", "outputs"}
        link = last_run_xcom(EXAMPLE, task, key="_link_ReusedFromLink")
        assert link == step_run_page(earlier["step_run_id"])  # the earlier run's page in the Airflow UI
        assert example.explain(task)["hit"] is True
    # the model is registered once: the reused step adds no version and no asset event
    assert DatasetRegistry().versions("iris_model") == [1]
    assert second["compare"]["registered"] == [{"name": "iris_model", "version": 1, "created": False}]
    assert len(asset_events(dataset_asset_uri("iris_model"))) == events_before + 1
    assert read_record(second["compare"]["step_run_id"])["metrics"]["test_accuracy"] > 0.8


def test_what_reruns_what_is_reused_and_why(chain: Pipeline) -> None:
    store = Datastore.get_default()
    # regenerate_outputs: every step runs (the audit step never reuses: allow_reuse=False)
    assert chain.run({"regenerate_outputs": True}) == ["audit", "prep", "report", "train"]
    assert chain.explain("report")["explanation"] == ["regenerate_outputs requested in the trigger conf"]
    assert chain.explain("audit")["explanation"] == ["reuse disabled (allow_reuse=False)"]
    regenerated = chain.results(*CHAIN_STEPS)

    # later runs reuse the regenerated outputs; only an mtime, and a file that .amlignore excludes, change
    # nothing; a corrupt index entry is ignored with a reason, and the run overwrites it
    os.utime(chain.sources / "train" / "train.py", (1, 1))
    (chain.sources / "prep" / "notes.log").write_text("scratch")
    key = read_record(regenerated["report"]["step_run_id"])["reuse"]["key"]
    store.write_text(ReuseIndex.path(key), "{not json")
    assert chain.run() == ["audit", "report"]
    now = chain.results(*CHAIN_STEPS)
    assert _statuses(chain) == {"prep": "Reused", "train": "Reused", "report": "Completed"}
    assert {t: now[t]["reused_from"] for t in ("prep", "train")} == {
        t: regenerated[t]["step_run_id"] for t in ("prep", "train")
    }
    assert chain.explain("train")["hit"] is True
    assert chain.explain("report")["explanation"][0].startswith("the reuse index entry for this key is corrupt")
    entry = ReuseIndex(store).get(key)
    assert entry is not None and entry.step_run_id == now["report"]["step_run_id"]

    # a parameter value: train and what reads its model
    assert chain.run({"learning_rate": 0.5}) == ["audit", "report", "train"]
    assert chain.explain("prep")["hit"] is True
    assert chain.explain("train")["explanation"] == ["parameter learning_rate 0.1 → 0.5"]
    assert "input model: upstream output changed" in chain.explain("report")["explanation"]

    # a source file, and a file that hash_paths names outside the source folder
    with open(chain.sources / "train" / "train.py", "a") as fh:
        fh.write("# tuned\n")
    (chain.sources / "shared" / "common.py").write_text("SCALE = 2.0\n")
    assert chain.run({"learning_rate": 0.5}) == ["audit", "report", "train"]
    assert chain.explain("train")["explanation"] == [
        "source file train.py changed",
        "hash_paths file ../shared/common.py changed",
    ]

    # other bytes in the input csv at the same path: every step downstream of it
    store.write_text("raw/part-0.csv", "x\n1\n2\n4\n")
    assert chain.run({"learning_rate": 0.5}) == ["audit", "prep", "report", "train"]
    assert chain.explain("prep")["explanation"] == ["input raw: file raw/part-0.csv content changed"]
    assert chain.explain("train")["explanation"][0] == "input prepped: upstream output changed"

    # a reused output deleted: the step computes it again (and its downstream reads the new folder)
    lost = chain.results("train")["train"]["outputs"]["model"]["path"]
    store.delete(lost, recursive=True)
    assert chain.run({"learning_rate": 0.5}) == ["audit", "report", "train"]
    assert chain.explain("train")["explanation"][0] == f"earlier outputs are gone ({lost} missing)"

    # explain --run: an earlier step run's decision, by its DAG run id
    assert chain.explain("train", "--run", read_record(regenerated["train"]["step_run_id"])["run_id"])["reason"] == (
        "regenerate"
    )
