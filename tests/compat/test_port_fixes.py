"""What porting the public SDK v1 samples found, fixed: each case as a v1 user meets it."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, DatasetConsumptionConfig, PipelineParameter
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.runner.inputs import _file_or_folder
from airflow_mlpipe.storage.datastore import Datastore


def test_declared_delimited_format_wins_over_a_parquet_suffix(local_default: Datastore) -> None:
    local_default.write_text("odd/data.parquet", "a,b\n1,2\n3,4\n")
    table = Dataset.Tabular.from_delimited_files(path=(local_default, "odd/data.parquet"))
    assert table.to_pandas_dataframe().to_dict("list") == {"a": [1, 3], "b": [2, 4]}


@pytest.mark.parametrize(
    ("path", "is_file"),
    [
        pytest.param("one/x.csv", True, id="a-file"),
        pytest.param("one", False, id="a-folder-of-one-file"),
        pytest.param("one/*.csv", False, id="a-glob-matching-one-file"),
    ],
)
def test_a_folder_input_is_a_folder(local_default: Datastore, tmp_path: Path, path: str, is_file: bool) -> None:
    local_default.write_text("one/x.csv", "a\n1\n")
    dataset = Dataset.File.from_files(path=(local_default, path))
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.csv").write_text("a\n1\n")
    handed = _file_or_folder(dataset, dataset.current_manifest(), str(folder))
    assert handed == str(folder / "x.csv" if is_file else folder)


def test_a_pipeline_parameter_is_no_input_dataset() -> None:
    with pytest.raises(DatasetError, match="PipelineParameter .* cannot be an input's dataset"):
        DatasetConsumptionConfig("raw", PipelineParameter("raw_dataset", "iris"))  # type: ignore[arg-type]


def test_absolute_path_on_compute_is_named_as_such() -> None:
    consumption = Dataset.File.from_files(path=("lake", "raw")).as_named_input("raw")
    with pytest.raises(DatasetError, match=r"^path_on_compute '/mnt/raw' must be a relative path") as caught:
        consumption.as_mount(path_on_compute="/mnt/raw")
    assert "datastore" not in str(caught.value)
