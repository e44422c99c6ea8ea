"""Tabular datasets into pandas: csv, tsv, parquet, many files; malformed files name file and line."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.storage.datastore import Datastore


def test_many_csv_files_concatenated(default_store: Datastore) -> None:
    default_store.write_text("t/part-0.csv", "id,value\n1,0.5\n2,1.5\n")
    default_store.write_text("t/part-1.csv", "id,value\n3,2.5\n")
    frame = Dataset.Tabular.from_delimited_files((default_store, "t/*.csv"), include_path=True).to_pandas_dataframe()
    assert frame["id"].tolist() == [1, 2, 3]
    assert frame["value"].sum() == pytest.approx(4.5)
    assert frame["Path"].tolist() == ["t/part-0.csv", "t/part-0.csv", "t/part-1.csv"]


def test_tsv_and_no_header(local_default: Datastore) -> None:
    local_default.write_text("t.tsv", "1\tx\n2\ty\n")
    frame = Dataset.Tabular.from_delimited_files(
        (local_default, "t.tsv"), separator="\t", header=False
    ).to_pandas_dataframe()
    assert frame.shape == (2, 2) and frame[1].tolist() == ["x", "y"]


def test_parquet(default_store: Datastore) -> None:
    buf = io.BytesIO()
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_parquet(buf)
    default_store.write_bytes("pq/data.parquet", buf.getvalue())
    frame = Dataset.Tabular.from_parquet_files((default_store, "pq/*.parquet")).to_pandas_dataframe()
    assert frame["b"].tolist() == ["x", "y", "z"]
    registered = Dataset.Tabular.from_parquet_files((default_store, "pq")).register("pq")
    assert Dataset.get_by_name("pq").to_pandas_dataframe()["a"].sum() == 6
    assert registered.version == 1


def test_malformed_file_names_file_and_line(local_default: Datastore) -> None:
    local_default.write_text("bad/good.csv", "a,b\n1,2\n")
    local_default.write_text("bad/broken.csv", "a,b\n1,2\n3,4,5,6\n")
    with pytest.raises(DatasetError, match=r"malformed delimited file 'bad/broken.csv'.*line 3"):
        Dataset.Tabular.from_delimited_files((local_default, "bad/*.csv")).to_pandas_dataframe()


def test_set_column_types(local_default: Datastore) -> None:
    local_default.write_text("c.csv", "a,b\n1,2\n")
    frame = Dataset.Tabular.from_delimited_files(
        (local_default, "c.csv"), set_column_types={"a": "float64"}
    ).to_pandas_dataframe()
    assert str(frame["a"].dtype) == "float64"
    with pytest.raises(DatasetError, match="columns the data does not have"):
        Dataset.Tabular.from_delimited_files(
            (local_default, "c.csv"), set_column_types={"zz": "int64"}
        ).to_pandas_dataframe()
