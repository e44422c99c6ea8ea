"""``azureml.core`` as step scripts use it, over airflow-mlpipe: each call with the v1 meaning it promises."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from airflow_mlpipe.compat.core import Dataset, Datastore, Model, PipelineRun, Run, Workspace
from airflow_mlpipe.compat.data import DataPath, DataReference
from airflow_mlpipe.exceptions import ConfigError, DatasetError, DatasetNotFoundError
from airflow_mlpipe.storage.datastore import Datastore as OurDatastore

IRIS = "sepal,petal,species\n1,2,a\n3,4,b\n5,6,a\n7,8,b\n9,10,a\n"


@pytest.fixture
def ws() -> Workspace:
    return Workspace.from_config()


@pytest.fixture
def step_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, local_default: OurDatastore) -> dict[str, object]:
    """What the runner hands a step script: its run context file."""
    context = {
        "run_id": "srid1",
        "parent": {"dag_id": "v1_dag", "run_id": "manual__1"},
        "metrics_file": str(tmp_path / "work" / "metrics.jsonl"),
        "artifacts_dir": str(tmp_path / "work" / "artifacts"),
        "inputs": {"raw": {"mode": "download", "path": str(tmp_path)}},
        "outputs": {"prepped": str(tmp_path / "out")},
        "airflow": {"dag_id": "v1_dag", "run_id": "manual__1", "task_id": "prep"},
    }
    path = tmp_path / "run_context.json"
    path.write_text(json.dumps(context))
    monkeypatch.setenv("MLPIPE_RUN_CONTEXT", str(path))
    monkeypatch.chdir(tmp_path)
    return context


def test_run_in_a_step(
    step_context: dict[str, object], ws: Workspace, local_default: OurDatastore, tmp_path: Path
) -> None:
    run = Run.get_context()
    assert Run.get_context() is run and not run.offline
    assert run.id == "srid1" and run.experiment.name == "v1_dag" and run.experiment.workspace == ws
    assert run.name == run.display_name == "prep"
    assert run.output_datasets == {"prepped": step_context["outputs"]["prepped"]}  # type: ignore[index]
    assert run.input_datasets["raw"] == str(tmp_path)
    run.log("loss", 0.5)
    run.log("loss", 0.25)
    assert run.get_metrics() == {"loss": [0.5, 0.25]}
    assert isinstance(run.parent, PipelineRun)
    run.parent.log("best_accuracy", 0.9)
    assert run.parent.get_metrics() == {"best_accuracy": 0.9}
    assert local_default.exists("_mlpipe/pipeline_runs/v1_dag/manual__1/metrics/srid1.jsonl")
    with pytest.raises(SystemExit, match="bad data"):
        run.fail("bad data")


def test_register_model_and_get_model_path(step_context: dict[str, object], ws: Workspace) -> None:
    os.makedirs("outputs")
    Path("outputs/model.pkl").write_bytes(b"weights-1")
    run = Run.get_context()
    first = run.register_model("iris_model", "outputs/model.pkl", tags={"area": "iris"})
    assert (first.name, first.version, first.tags, first.run_id) == ("iris_model", 1, {"area": "iris"}, "srid1")
    assert Path(Model.get_model_path("iris_model")).read_bytes() == b"weights-1"
    again = Model.register(ws, "outputs/model.pkl", "iris_model")
    assert again.version == 1  # the same bytes: no new version
    Path("outputs/model.pkl").write_bytes(b"weights-2")
    assert Model.register(ws, model_path="outputs/model.pkl", model_name="iris_model").version == 2
    assert Path(Model.get_model_path("iris_model")).read_bytes() == b"weights-2"
    assert Path(Model.get_model_path("iris_model", version=1)).read_bytes() == b"weights-1"
    assert Model(ws, "iris_model").version == 2 and Model(ws, id="iris_model:1").version == 1
    assert [m.version for m in Model.list(ws, name="iris_model")] == [1, 2]
    folder = Model(ws, "iris_model").download(target_dir="dl")
    assert Path(folder).read_bytes() == b"weights-2"


def test_folder_model(local_default: OurDatastore, tmp_path: Path, ws: Workspace) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a.json").write_text("{}")
    Model.register(ws, str(tmp_path / "m"), "folder_model")
    assert os.listdir(Model.get_model_path("folder_model")) == ["a.json"]


def test_unknown_model(local_default: OurDatastore) -> None:
    with pytest.raises(DatasetNotFoundError, match="no model named 'nope'"):
        Model.get_model_path("nope")


def test_datasets_the_v1_way(local_default: OurDatastore, ws: Workspace, tmp_path: Path) -> None:
    store = Datastore.get_default(ws)
    assert store == Datastore.get(ws, "mlpipe_default") == ws.get_default_datastore()
    (tmp_path / "up").mkdir()
    (tmp_path / "up" / "iris.csv").write_text(IRIS)
    ref = store.upload_files([str(tmp_path / "up" / "iris.csv")], target_path="iris", overwrite=True)
    assert isinstance(ref, DataReference) and ref.path_on_datastore == "iris"
    assert store.upload(src_dir=str(tmp_path / "up"), target_path="copy").to_dataset().to_path() == ["iris.csv"]
    with pytest.raises(ConfigError, match="overwrite=True"):
        store.upload(src_dir=str(tmp_path / "up"), target_path="iris")
    table = Dataset.Tabular.from_delimited_files(path=[(store, "iris/*.csv")])
    table.register("iris_table")
    registered = Dataset.get_by_name(ws, name="iris_table")
    assert len(registered.to_pandas_dataframe()) == 5
    train, test = registered.random_split(percentage=0.6, seed=1)
    assert len(train.to_pandas_dataframe()) + len(test.to_pandas_dataframe()) == 5
    assert set(train.to_pandas_dataframe()["sepal"]).isdisjoint(test.to_pandas_dataframe()["sepal"])
    assert list(table.keep_columns(["sepal"]).take(2).to_pandas_dataframe()["sepal"]) == [1, 3]
    assert list(table.drop_columns("species").skip(3).to_pandas_dataframe().columns) == ["sepal", "petal"]
    assert list(table.filter("species == 'a'").to_pandas_dataframe()["sepal"]) == [1, 5, 9]
    assert len(table.filter(lambda df: df["petal"] > 4).to_pandas_dataframe()) == 3
    files = Dataset.File.from_files(path=DataPath(store, "iris"))
    assert files.to_path() == ["iris.csv"]
    assert isinstance(store.path("iris"), DataReference)
    assert Dataset.File.from_files(store.path("iris")).to_path() == ["iris.csv"]
    assert isinstance(table.take_sample(0.5, seed=0).to_pandas_dataframe(), pd.DataFrame)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda t: t.keep_columns(["nope"]), "no column 'nope'", id="keep-missing"),
        pytest.param(lambda t: t.random_split(1.5), "from 0 to 1", id="split-percentage"),
        pytest.param(lambda t: t.filter(42), "pandas query string", id="filter-expression"),
    ],
)
def test_refused_transforms(local_default: OurDatastore, call: object, message: str) -> None:
    local_default.write_text("t/x.csv", IRIS)
    table = Dataset.Tabular.from_delimited_files((local_default, "t/x.csv"))
    with pytest.raises(DatasetError, match=message):
        call(table).to_pandas_dataframe()  # type: ignore[operator]


def test_refused_workspace_calls(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="mlpipe_datastore"):
        Datastore.register_azure_blob_container(ws, "x", "container", "account")
    with pytest.raises(ConfigError, match="mlpipe_default"):
        ws.set_default_datastore("other")
