"""``Run`` inside a step context and offline: metrics of every kind, images, uploaded files, inputs."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.run import InputPath, Run
from airflow_mlpipe.runner.execute import _collect_metrics


def _run(tmp_path: Path, inputs: dict | None = None) -> Run:
    context = {
        "run_id": "dag.run.task",
        "parent": {"dag_id": "dag", "run_id": "run"},
        "metrics_file": str(tmp_path / "metrics.jsonl"),
        "artifacts_dir": str(tmp_path / "artifacts"),
        "inputs": inputs or {},
    }
    return Run(context)


def test_every_metric_kind_reaches_the_record(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.log("loss", 0.9)
    run.log("loss", 0.5)
    run.log("accuracy", 0.97, description="test set")
    run.log_list("lrs", [0.1, 0.01])
    run.log_row("curve", epoch=1, loss=0.9)
    run.log_row("curve", epoch=2, loss=0.5)
    run.log_table("scaling", {"feature": ["a", "b"], "mean": [1.0, 2.0]})
    image = tmp_path / "plot.png"
    image.write_bytes(b"\x89PNG fake")
    run.log_image("confusion", path=str(image))
    run.upload_file("reports/summary.txt", str(image))
    metrics, entries = _collect_metrics(str(tmp_path))
    assert metrics["loss"] == [0.9, 0.5] and metrics["accuracy"] == 0.97
    assert metrics["lrs"] == [0.1, 0.01]
    assert metrics["curve"] == {"epoch": [1, 2], "loss": [0.9, 0.5]}
    assert metrics["scaling"] == {"feature": ["a", "b"], "mean": [1.0, 2.0]}
    assert metrics["confusion"] == "images/confusion.png"
    assert (tmp_path / "artifacts" / "images" / "confusion.png").read_bytes() == b"\x89PNG fake"
    assert (tmp_path / "artifacts" / "reports" / "summary.txt").exists()
    assert run.get_metrics()["loss"] == [0.9, 0.5]
    assert len(entries) == 8  # upload_file keeps a file, not a metric
    assert run.parent is not None and run.parent.dag_id == "dag"


def test_bad_metric_calls(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(ValueError, match="non-empty string"):
        run.log("", 1)
    with pytest.raises(ValueError, match="exactly one of path"):
        run.log_image("x")


def test_input_paths_read_themselves(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("x\n1\n")
    (folder / "b.csv").write_text("x\n2\n")
    (folder / "_MLPIPE_COMPLETE").write_text(json.dumps({}))
    run = _run(tmp_path, {"data": {"mode": "download", "path": str(folder)}})
    data = run.input_datasets["data"]
    assert isinstance(data, InputPath) and data == str(folder)
    assert data.to_pandas_dataframe()["x"].tolist() == [1, 2]
    assert data.to_path() == ["a.csv", "b.csv"]
    copied = data.download(str(tmp_path / "copy"))
    assert sorted(Path(p).name for p in copied) == ["a.csv", "b.csv"]


def _upload(name: object) -> Any:
    return lambda run: run.upload_file(name, io.BytesIO())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(_upload("../../evil.txt"), "upload_file name '../../evil.txt'", id="up"),
        pytest.param(
            _upload("/etc/x"),
            "upload_file name '/etc/x' must be a relative",
            id="abs",
        ),
        pytest.param(_upload("a//b"), "upload_file name 'a//b'", id="empty-part"),
        pytest.param(_upload("a\\..\\..\\b"), "no backslash", id="backslash"),
        pytest.param(_upload(3), "upload_file name 3 must be", id="int"),
        pytest.param(lambda run: run.log_image("../../x", path="p.png"), "log_image name '../../x.png'", id="image"),
        pytest.param(lambda run: run.log_table("t", 3), "Run.log_table('t'): value 3 must map column", id="table-int"),
        pytest.param(lambda run: run.log_table("t", {"a": "xyz"}), "value {'a': 'xyz'} must map", id="table-str"),
        pytest.param(lambda run: run.log_list("l", "abc"), "Run.log_list('l'): value 'abc' must be a list", id="list"),
    ],
)
def test_artifact_names_stay_in_the_artifacts_and_tables_are_checked(tmp_path: Path, call: Any, message: str) -> None:
    """A name with '..' wrote outside the run's artifacts folder; a table or list of the wrong shape failed with
    an AttributeError, or logged one entry a character."""
    run = _run(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as caught:
        call(run)
    assert message in str(caught.value)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "metrics.jsonl").exists()
